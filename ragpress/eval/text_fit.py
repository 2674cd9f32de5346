"""Text cut to a token budget: the Paul Graham essay haystack RULER uses, token counting with any
tokenizer, and the fit loop every synthetic task shares.

RULER (Hsieh et al. 2024, Sec. 3) grows the haystack until the whole prompt reaches the requested
length. Here ``context_tokens`` counts the context alone (the question and prompt layout belong to
the runner), the haystack is cut at a token boundary rather than grown in steps of 500 words, and
the size is searched (:func:`fit`) rather than stepped."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ragpress.corpora import essays_dir


@lru_cache(maxsize=1)
def essay_text() -> str:
    """Every essay in file-name order, whitespace runs collapsed to one space as RULER does."""
    return re.sub(r"\s+", " ", " ".join(path.read_text(errors="ignore") for path in sorted(essays_dir().glob("*.txt")))).strip()


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` without special tokens."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def prefix_tokens(tokenizer: Any, text: str, tokens: int) -> str:
    """The longest prefix of ``text`` holding ``tokens`` tokens, cut at a token boundary."""
    if tokens <= 0:
        return ""
    head = text[: tokens * 12]  # no tokenizer here averages 12 characters a token
    offsets = tokenizer(head, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return head[: offsets[min(tokens, len(offsets)) - 1][1]]


def sentences(text: str) -> list[str]:
    """Sentences split after ``.``, ``!`` or ``?`` and a space (RULER uses nltk's punkt, whose data
    would be a download)."""
    return [s for s in re.split(r"(?<=[.!?]) ", text) if s]


def fit(tokenizer: Any, tokens: int, build: Callable[[int], str], start: int, close: float = 0.99, least: float = 0.9) -> tuple[str, int, int]:
    """The text of ``build(size)`` for the largest ``size`` in ``[0, start]`` whose text has at most
    ``tokens`` tokens, found by proportional guesses kept inside a bisection bracket; stops early
    once a text reaches ``close * tokens``. Returns the text, its token count and the size.
    ``start`` should overshoot (the bracket only shrinks), and ``build`` should grow with ``size``.
    A best text under ``least * tokens`` means the source ran out (the essays hold ~139K SmolLM2 tokens): an error."""
    lo, hi, size = -1, start + 1, start  # sizes in (lo, hi) are untried: 0 is tried before giving up
    best = None
    while True:
        text = build(size)
        measured = count_tokens(tokenizer, text)
        if measured <= tokens:
            lo, best = size, (text, measured, size)
            if measured >= close * tokens:
                return best
        else:
            hi = size
        if hi - lo <= 1:
            if best is None:
                raise ValueError(f"Even the shortest context has {measured} tokens, over the {tokens} asked for; ask for more")
            if best[1] < least * tokens:
                raise ValueError(f"The source text runs out: the longest context holds {best[1]} tokens of the {tokens} asked for; ask for fewer")
            return best
        guess = size * tokens // max(measured, 1)
        size = guess if lo < guess < hi else (lo + hi) // 2
