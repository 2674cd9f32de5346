"""Retrievers (``query -> list[Chunk]``) and rerankers (``query, list[Chunk] -> list[Chunk]``).

A retriever is indexed once with :meth:`Retriever.index`, then answers queries; the base class
checks input and that the index exists. Returned chunks carry their retrieval ``score``, best first.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ragpress.core.stage import Stage, check_chunks, check_query
from ragpress.core.types import Chunk


@dataclasses.dataclass
class Retriever(Stage):
    kind: ClassVar[str] = "retriever"
    k: int = 5

    def __post_init__(self):
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}.")

    def index(self, chunks: list[Chunk]) -> None:
        """Build the index over ``chunks`` (replacing any earlier one)."""
        self.build(check_chunks(chunks, allow_empty=False))
        self._indexed = True

    def run(self, query: str) -> list[Chunk]:
        if not getattr(self, "_indexed", False):
            raise RuntimeError(f"{type(self).__name__} has no index yet: call .index(chunks) or Pipeline.index(documents) first.")
        return self.search(check_query(query), self.k)

    def build(self, chunks: list[Chunk]) -> None:
        raise NotImplementedError

    def search(self, query: str, k: int) -> list[Chunk]:
        raise NotImplementedError


@dataclasses.dataclass
class Reranker(Stage):
    """Reorders (and may cut) retrieved chunks for a query; ``top_k`` keeps the best (all if None)."""

    kind: ClassVar[str] = "reranker"
    top_k: int | None = None

    def run(self, query: str, chunks: list[Chunk]) -> list[Chunk]:
        ranked = self.rerank(check_query(query), check_chunks(chunks))
        return ranked[: self.top_k] if self.top_k is not None else ranked

    def rerank(self, query: str, chunks: list[Chunk]) -> list[Chunk]:
        raise NotImplementedError
