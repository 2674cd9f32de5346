"""What the LLM-judged retrievers share: batched greedy chat generation that counts its prompts,
prompt-safe rendering of untrusted passage text, and tolerant parsing of numbered scores.

Passages are data, never instructions. Their chat control tokens are read as text by the tokenizer
itself (:mod:`ragpress.core.text`), so a passage cannot close the user turn; :func:`safe_passage`
rewrites bracketed ids, so it cannot pose as another numbered candidate; :func:`own_words` blanks
what the model copied from a passage before any score is read, so a passage that says "Relevance:
10" does not become a score by being repeated; and the parsers read numbers only for ids that exist,
clipped to the scale asked for. What remains: a model can still be persuaded to write a high score
in its own words (SECURITY.md).
"""

from __future__ import annotations

from ragpress.core.extras import require

require("torch", what="LLM scoring")

import difflib
import json
import re
from collections.abc import Sequence

import torch

from ragpress.core.lm import CausalLM
from ragpress.core.loaders import load_causal_lm

_NUMBER = r"(\d{1,4}(?:\.\d+)?)"
_SEP = r"(?:[:=>–]|-(?=\s))"
_PAIR_JSON = re.compile(r"\[\s*\"?(\d{1,4})\"?\s*,\s*" + _NUMBER + r"\s*\]")
_LABEL = r"(?:score|relevance)?\s*[:=]?\s*"
_PAIR_BRACKET = re.compile(r"[\[(]\s*(\d{1,4})\s*[\])]\s*" + _SEP + r"*\s*" + _LABEL + _NUMBER, re.IGNORECASE)
_PAIR_LINE = re.compile(
    r"(?:^|[,;{])\s*(?:candidate|node|passage|doc(?:ument)?|id)?\s*#?\"?(\d{1,4})\"?\s*" + _SEP + r"+\s*" + _LABEL + _NUMBER,
    re.IGNORECASE | re.MULTILINE,
)


def safe_passage(text: str, max_chars: int) -> str:
    """``text`` on one line, with ``[n]`` markers made ``(n)``, cut to ``max_chars``."""
    text = text.replace("[", "(").replace("]", ")")
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def own_words(reply: str, sources: Sequence[str], min_chars: int = 12) -> str:
    """``reply`` with every run of at least ``min_chars`` characters that holds a number and also
    occurs in one of the ``sources`` (whitespace and brackets as :func:`safe_passage` writes them)
    blanked out, so scores are read only from what the model wrote itself."""
    kept = list(reply)
    spots = [i for i, ch in enumerate(reply) if not ch.isspace()]  # reply positions of the compared characters
    flat = "".join(reply[i] for i in spots).replace("[", "(").replace("]", ")")
    for source in sources:
        other = "".join(source.split()).replace("[", "(").replace("]", ")")
        matcher = difflib.SequenceMatcher(None, flat, other, autojunk=False)
        for start, _, size in matcher.get_matching_blocks():
            if size >= min_chars and any(ch.isdigit() for ch in flat[start : start + size]):  # a copied number
                for k in range(start, start + size):
                    kept[spots[k]] = " "
    return "".join(kept)


def parse_numbered_scores(answer: str, n: int, scale: float) -> dict[int, float]:
    """Scores for candidate ids ``0..n-1`` read from an LLM answer, each clipped to ``[0, scale]``.

    Accepts JSON (``{"relevance_scores": [[0, 85], ...]}`` or ``{"0": 85}``), ``[0] 85``,
    ``0: 85``, ``Candidate 0 - 85`` lines. Only the text after the last ``Scores:`` marker is read
    when there is one (so numbers in the reasoning do not count); later mentions of an id win.
    Unknown ids are ignored; an empty dict means the answer held no readable score.
    """
    marker = list(re.finditer(r"^\W*(?:relevance[_ ])?scores?\W*[:=]", answer, re.IGNORECASE | re.MULTILINE))
    body = answer[marker[-1].start() :] if marker else answer
    found: dict[int, float] = {}
    for pattern in (_PAIR_LINE, _PAIR_BRACKET, _PAIR_JSON):
        for match in pattern.finditer(body):
            found[int(match.group(1))] = float(match.group(2))
    found.update(_json_scores(body))
    return {i: min(max(s, 0.0), scale) for i, s in found.items() if 0 <= i < n}


def _json_scores(text: str) -> dict[int, float]:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return {}
    try:
        data = json.loads(text[start : end + 1])
    except (json.JSONDecodeError, RecursionError):
        return {}
    if isinstance(data, dict) and "relevance_scores" in data:
        data = data["relevance_scores"]
    pairs = data.items() if isinstance(data, dict) else data if isinstance(data, list) else []
    out = {}
    for pair in pairs:
        try:
            key, value = pair
            out[int(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class ChatLLM:
    """Greedy chat generation in left-padded batches through the shared model loader.

    ``prompts`` counts every conversation sent (what the papers call an LLM call) and ``batches``
    the forward-generation passes; both only grow, so callers diff them around a query. ``batch_size``
    None sizes batches to the device (:meth:`CausalLM.generation_batch_size`)."""

    def __init__(self, name: str, device: str | None = None, batch_size: int | None = None):
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.name, self.device, self.batch_size = name, device, batch_size
        self.prompts = 0
        self.batches = 0

    @property
    def lm(self) -> CausalLM:
        return load_causal_lm(self.name, self.device)

    @torch.inference_mode()
    def complete(self, conversations: Sequence[list[dict[str, str]]], max_new_tokens: int, desc: str = "", prefix: str = "") -> list[str]:
        """The reply to each conversation (a list of chat messages), decoded without special tokens.
        A ``prefix`` is written at the start of every reply before generation (and is part of the
        returned text): it steers small models into the expected answer format."""
        if not conversations:
            return []
        replies = self.lm.chat_batch(conversations, max_new_tokens, self.batch_size, prefix, desc)
        self.batches += -(-len(conversations) // self.lm.generation_batch_size(self.batch_size))
        self.prompts += len(conversations)
        return replies
