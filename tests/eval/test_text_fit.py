"""The budget search every task shares, on a whitespace tokenizer so the counts are plain to check."""

import pytest

from ragpress.eval import generate, register
from ragpress.eval.text_fit import fit, sentences


def words(text, add_special_tokens=False):
    return {"input_ids": text.split()}


@pytest.mark.parametrize("budget", [50, 997, 4096])
def test_fit_lands_at_most_one_percent_under_the_budget_when_units_allow(budget):
    build = lambda size: "w " * (size * 3 // 2)  # noqa: E731  (a text of 1.5 tokens a size unit)
    text, measured, size = fit(words, budget, build, budget * 5 // 4)
    assert measured == len(text.split()) <= budget
    assert measured >= 0.99 * budget - 1  # one unit is 1.5 tokens
    assert build(size) == text


def test_fit_says_so_when_even_the_shortest_text_is_over_the_budget():
    with pytest.raises(ValueError, match="shortest context has 5 tokens, over the 2 asked for"):
        fit(words, 2, lambda size: "w " * (size + 5), 10)
    assert fit(words, 5, lambda size: "w " * (size + 5), 10)[1:] == (5, 0)  # size 0 is tried before giving up


def test_sentences_split_after_end_punctuation():
    assert sentences("One. Two? Three! Four") == ["One.", "Two?", "Three!", "Four"]


def test_registering_a_taken_name_and_asking_for_no_examples_fail():
    with pytest.raises(ValueError, match="already registered"):
        register("niah_single")(lambda *args: [])
    with pytest.raises(ValueError, match="n >= 1"):
        generate("niah_single", 0)


def test_fit_says_so_when_the_source_runs_out():
    with pytest.raises(ValueError, match="runs out: the longest context holds 100 tokens of the 1000"):
        fit(words, 1000, lambda size: "w " * min(size, 100), 1250)
