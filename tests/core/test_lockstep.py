import pytest

from ragpress.core.lockstep import run_lockstep


def countdown(name, rounds):
    """A job that asks ``rounds`` questions, each depending on the answer before, and returns the answers."""
    answers, question = [], f"{name}0"
    for _ in range(rounds):
        answer = yield question
        answers.append(answer)
        question = f"{name}{answer}"
    return answers


def test_jobs_advance_together_one_answer_call_per_round():
    calls = []

    def answer(questions):
        calls.append(list(questions))
        return [len(q) for q in questions]

    assert run_lockstep([countdown("a", 3), countdown("bb", 1), countdown("c", 0)], answer) == [[2, 2, 2], [3], []]
    assert calls == [["a0", "bb0"], ["a2"], ["a2"]]  # rounds = the longest job's, each round in one call


def test_an_answer_hook_that_drops_requests_is_named():
    with pytest.raises(RuntimeError, match="answered 1 of 2 requests"):
        run_lockstep([countdown("a", 1), countdown("b", 1)], lambda questions: questions[:1])
