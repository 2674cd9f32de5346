"""Scores of one prediction against an example's answers.

Text tasks follow RULER's metrics (Hsieh et al. 2024; its released scorer's ``string_match_all``
/ ``string_match_part``): case-insensitive substring match of the references in the prediction.
:func:`string_match_all` (the fraction of references found) scores the needle, variable-tracking and
common-words tasks, where every answer is required; :func:`string_match_any` (1 if any reference is
found) scores QA, where the answers are alternatives. Code completion follows LongCodeZip (Shi et
al. 2025, code-completion experiments): exact match and edit similarity of the completed lines."""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter
from collections.abc import Sequence


def string_match_all(prediction: str, answers: Sequence[str]) -> float:
    """The fraction of ``answers`` found in ``prediction``, ignoring case."""
    found = sum(answer.lower() in prediction.lower() for answer in answers)
    return found / len(answers)


def string_match_any(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when any of ``answers`` is found in ``prediction``, ignoring case, else 0.0."""
    return float(any(answer.lower() in prediction.lower() for answer in answers))


def normalize_answer(text: str) -> list[str]:
    """SQuAD's normalisation: lowercase, no punctuation, no articles, split on white space."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


def f1(prediction: str, answers: Sequence[str]) -> float:
    """The best token F1 of ``prediction`` against any of ``answers`` (SQuAD v1.1's scorer)."""
    predicted = normalize_answer(prediction)
    best = 0.0
    for answer in answers:
        reference = normalize_answer(answer)
        common = sum((Counter(predicted) & Counter(reference)).values())
        if common:
            precision, recall = common / len(predicted), common / len(reference)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def code_lines(text: str, limit: int | None = None) -> list[str]:
    """The non-blank lines of ``text``, trailing spaces removed, the first ``limit`` of them: a model
    that goes on writing past the held-out lines is judged on as many lines as the reference has.
    Markdown fence lines (```` ``` ````, ```` ```python ````) are dropped: chat models wrap code in them."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("```")]
    return lines[:limit]


def exact_match(prediction: str, answer: str) -> float:
    """1.0 when the prediction's first lines equal the reference's lines (see :func:`code_lines`)."""
    reference = code_lines(answer)
    return float(code_lines(prediction, len(reference)) == reference)


def edit_similarity(prediction: str, answer: str) -> float:
    """difflib's similarity ratio (``2 * matches / total length``, in [0, 1]) of the prediction's first
    lines and the reference's lines, joined by newlines; no Levenshtein library is a dependency."""
    reference = code_lines(answer)
    predicted = "\n".join(code_lines(prediction, len(reference)))
    return difflib.SequenceMatcher(None, predicted, "\n".join(reference), autojunk=False).ratio()
