"""The generated tasks: seeded, at the requested length, with the answer where the example says."""

from __future__ import annotations

import re
import sysconfig
from collections import Counter

import pytest

from ragpress.eval import TASKS, Example, generate
from ragpress.eval.text_fit import count_tokens
from ragpress.models import load_tokenizer

TOKENS = 2048
OFFLINE_TASKS = ["niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "variable_tracking", "common_words", "code_completion"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def made(tokenizer):
    """Two examples of each task at seed 0, made once for the module."""
    return {name: generate(name, 2, TOKENS, seed=0, tokenizer=tokenizer) for name in OFFLINE_TASKS}


@pytest.mark.parametrize("name", OFFLINE_TASKS)
def test_same_seed_same_examples_other_seed_other_examples(name, tokenizer, made):
    assert generate(name, 2, TOKENS, seed=0, tokenizer=tokenizer) == made[name]
    other = generate(name, 2, TOKENS, seed=1, tokenizer=tokenizer)
    assert [x.context for x in other] != [x.context for x in made[name]]
    assert made[name][0].context != made[name][1].context  # examples of one call differ too


@pytest.mark.parametrize("name", OFFLINE_TASKS)
def test_context_holds_the_requested_tokens_within_five_percent(name, tokenizer, made):
    for example in made[name]:
        measured = count_tokens(tokenizer, example.context)
        assert example.metadata["context_tokens"] == measured
        assert 0.95 * TOKENS <= measured <= TOKENS, measured


@pytest.mark.parametrize("name", ["niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "variable_tracking"])
def test_every_answer_sits_at_its_span(name, made):
    for example in made[name]:
        assert [example.context[start:end] for start, end in example.spans] == list(example.answers)


@pytest.mark.parametrize(("name", "needles", "answers"), [
    ("niah_single", 1, 1), ("niah_multikey", 4, 1), ("niah_multivalue", 4, 4), ("niah_multiquery", 4, 4),
])
def test_niah_inserts_every_needle_and_asks_for_the_right_values(name, needles, answers, made):
    for example in made[name]:
        found = re.findall(r"One of the special magic numbers for ([a-z-]+) is: (\d{7})\.", example.context)
        assert len(found) == needles
        assert {key for key, _ in found} == set(example.metadata["keys"])
        asked = [value for key, value in found if key in example.question]
        assert sorted(asked) == sorted(example.answers) and len(example.answers) == answers


def test_variable_chain_carries_the_value_to_every_answer(made):
    for example in made["variable_tracking"]:
        first, *rest = example.answers
        assert f"VAR {first} = {example.metadata['value']}." in example.context
        positions = [example.context.index(f"VAR {name} = ") for name in example.answers]
        assert positions == sorted(positions)  # each assignment comes after the one it copies
        for previous, name in zip(example.answers, rest):
            assert f"VAR {name} = VAR {previous}." in example.context


def test_common_words_appear_thirty_times_and_no_other_word_more_than_three(made):
    for example in made["common_words"]:
        counts = Counter(re.findall(r"\d+\. ([A-Za-z]+)", example.context))
        assert all(counts[word] == 30 for word in example.answers)
        assert max(count for word, count in counts.items() if word not in example.answers) == 3


def test_held_out_code_is_the_body_cut_from_its_file(made):
    for example in made["code_completion"]:
        meta = example.metadata
        source = (sysconfig.get_paths()["stdlib"] + "/" + meta["file"])
        text = open(source, encoding="utf-8", errors="ignore").read()
        (start, end), (lo, hi) = meta["held_out"], meta["window"]
        assert text[start:end] == example.answers[0]
        assert example.context == text[lo:start] + text[end:hi]
        assert example.context[: meta["insert_at"]].rstrip().endswith(example.question.rstrip().splitlines()[-1].strip())
        assert len(example.answers[0].splitlines()) >= 3


def test_unknown_task_names_the_known_ones():
    with pytest.raises(KeyError, match="niah_single"):
        generate("niah_singel", 1)
    assert set(OFFLINE_TASKS) | {"wiki_cloze"} <= set(TASKS)


def test_example_rejects_a_span_outside_its_context():
    with pytest.raises(ValueError, match="outside the context"):
        Example(id="x", context="abc", question="q", answers=("a",), task="t", spans=((1, 9),))
    with pytest.raises(ValueError, match="non-empty"):
        Example(id="x", context="abc", question="q", answers=(), task="t")


@pytest.mark.integration
def test_wiki_cloze_blanks_an_entity_of_a_sentence_in_the_context(tokenizer):
    examples = generate("wiki_cloze", 2, TOKENS, seed=0, tokenizer=tokenizer)
    assert examples == generate("wiki_cloze", 2, TOKENS, seed=0, tokenizer=tokenizer)
    assert [x.context for x in generate("wiki_cloze", 2, TOKENS, seed=1, tokenizer=tokenizer)] != [x.context for x in examples]
    for example in examples:
        (start, end), (s0, s1) = example.spans[0], example.metadata["sentence"]
        assert example.context[start:end] == example.answers[0]
        sentence = example.context[s0:s1]
        assert example.question.endswith(sentence[: start - s0] + "____" + sentence[end - s0 :])
        assert 0.95 * TOKENS <= count_tokens(tokenizer, example.context) <= TOKENS
