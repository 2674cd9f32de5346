"""One evaluation example: a context to compress, a question about it, and the answers a correct
reply contains, with where each answer's evidence sits in the context when that is known."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """``spans`` are ``(start, end)`` character offsets into ``context``, one per located answer
    occurrence (``context[start:end]`` is that answer's text); tasks whose answer is not a single
    span of the context (common words, held-out code) leave them empty and say so in ``metadata``."""

    id: str
    context: str
    question: str
    answers: tuple[str, ...]
    task: str
    spans: tuple[tuple[int, int], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.answers or not all(isinstance(a, str) and a for a in self.answers):
            raise ValueError(f"Example {self.id!r}: answers must be a non-empty tuple of non-empty strings, got {self.answers!r}")
        for start, end in self.spans:
            if not 0 <= start < end <= len(self.context):
                raise ValueError(f"Example {self.id!r}: span ({start}, {end}) lies outside the context of {len(self.context)} characters")
