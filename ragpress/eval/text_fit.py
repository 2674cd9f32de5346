"""Text cut to a token budget: the Paul Graham essay haystack RULER uses, token counting with any
tokenizer, and the fit loop every synthetic task shares.

RULER (Hsieh et al. 2024, Sec. 3) grows the haystack until the whole prompt reaches the requested
length. Here ``context_tokens`` counts the context alone (the question and prompt layout belong to
the runner), and the haystack is cut at a token boundary rather than grown in steps of 500 words."""

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


def fit(tokenizer: Any, tokens: int, build: Callable[[int], str], start: int) -> tuple[str, int, int]:
    """Call ``build(size)`` from ``size = start`` down until its text has at most ``tokens`` tokens;
    returns the text, its token count and the size that built it. Each step removes the measured excess (at least 1), so it
    ends a few tokens under the budget at most, in a handful of calls."""
    size = start
    while True:
        text = build(size)
        measured = count_tokens(tokenizer, text)
        if measured <= tokens or size <= 0:
            return text, measured, size
        size -= max(1, measured - tokens)
