"""The scorers on hand-made cases."""

import pytest

from ragpress.eval import edit_similarity, exact_match, string_match_all, string_match_any
from ragpress.eval.scoring import f1


def test_string_match_all_is_the_fraction_of_answers_found_ignoring_case():
    assert string_match_all("The numbers are 123 and 456.", ["123", "456"]) == 1.0
    assert string_match_all("The numbers are 123 and 789.", ["123", "456"]) == 0.5
    assert string_match_all("VAR abcde", ["ABCDE", "FGHIJ", "KLMNO", "PQRST"]) == 0.25
    assert string_match_all("nothing", ["123"]) == 0.0


def test_string_match_any_is_one_when_any_answer_is_found():
    assert string_match_any("It was in Paris.", ["paris", "France"]) == 1.0
    assert string_match_any("It was in Lyon.", ["Paris", "France"]) == 0.0


def test_exact_match_compares_as_many_lines_as_the_reference_has():
    answer = "    x = 1\n    return x\n"
    assert exact_match("    x = 1  \n\n    return x\n    # more text the model went on with\n", answer) == 1.0
    assert exact_match("    x = 2\n    return x\n", answer) == 0.0
    assert exact_match("    x = 1\n", answer) == 0.0
    assert exact_match("```python\n    x = 1\n    return x\n```", answer) == 1.0  # a fenced block is judged on its lines


def test_edit_similarity_is_difflibs_ratio_of_the_compared_lines():
    assert edit_similarity("abcd", "abcd") == 1.0
    assert edit_similarity("abcx", "abcd") == pytest.approx(6 / 8)  # 3 matching characters of 4 + 4
    assert edit_similarity("", "abcd") == 0.0
    assert edit_similarity("ab\ncd\nextra", "ab\ncd") == 1.0


def test_f1_is_squads_token_f1_best_over_answers():
    # "the" is dropped, punctuation too: prediction {eiffel, tower, paris} vs {eiffel, tower}: P 2/3, R 1 -> 0.8
    assert f1("The Eiffel Tower, Paris.", ["Eiffel Tower"]) == pytest.approx(0.8)
    assert f1("The Eiffel Tower, Paris.", ["Louvre", "the eiffel tower paris"]) == 1.0
    assert f1("Louvre", ["Eiffel Tower"]) == 0.0
    assert f1("red red blue", ["red blue green"]) == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # each word counted once
