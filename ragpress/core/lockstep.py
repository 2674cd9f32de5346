"""Many jobs that each wait on a model, advanced in lockstep so their model calls share batches.

A job is written as a generator: it yields a request (a prompt, a set of texts to score), receives
the answer and goes on, and returns its result. :func:`run_lockstep` starts every job, hands all
the requests pending in one round to ``answer`` in a single call (which batches them as the model
likes), sends each job its answer and repeats until every job has returned. A job's answer may
decide its next request, so the jobs cannot be flattened into one list up front; lockstep keeps
them deterministic and single-threaded (tokenizers and parsers are not shared across threads).
One job alone makes exactly the requests it would make on its own, and the number of ``answer``
calls is the most rounds any job needs, not their sum."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")


def run_lockstep(jobs: list[Generator[Request, Answer, Any]], answer: Callable[[list[Request]], list[Answer]]) -> list[Any]:
    """The value each job returns, its requests answered together with the other jobs' of the same
    round through one ``answer(requests) -> answers`` call per round."""
    results: list[Any] = [None] * len(jobs)
    pending: dict[int, Request] = {}

    def advance(i: int, reply: Answer | None) -> None:
        try:
            pending[i] = jobs[i].send(reply)
        except StopIteration as stop:
            results[i] = stop.value

    for i in range(len(jobs)):
        advance(i, None)
    while pending:
        asked = list(pending.items())
        pending.clear()
        replies = answer([request for _, request in asked])
        if len(replies) != len(asked):
            raise RuntimeError(f"{getattr(answer, '__qualname__', answer)} answered {len(replies)} of {len(asked)} requests; "
                               "it must return one answer per request, in order.")
        for (i, _), reply in zip(asked, replies):
            advance(i, reply)
    return results
