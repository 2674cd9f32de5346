"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): merge ranked lists by summing
``1 / (rank_constant + rank)`` for each chunk over the lists it appears in."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ragpress.core.stage import Stage, check_chunks
from ragpress.core.types import Chunk


@dataclasses.dataclass
class ReciprocalRankFusion(Stage):
    """Fuses the rankings of several retrievers into one; ``top_k`` keeps the best (all if None).
    Chunks are the same when they are the same span of the same document."""

    kind: ClassVar[str] = "fusion"
    method: ClassVar[str] = "rrf"
    rank_constant: int = 60
    top_k: int | None = None

    def run(self, *rankings: list[Chunk]) -> list[Chunk]:
        if not rankings:
            raise ValueError("ReciprocalRankFusion needs at least one ranked list.")
        scores: dict[tuple[str, int, int], float] = {}
        first: dict[tuple[str, int, int], Chunk] = {}
        for ranking in rankings:
            for rank, chunk in enumerate(check_chunks(ranking), 1):
                key = (chunk.doc_id, chunk.start, chunk.end)
                scores[key] = scores.get(key, 0.0) + 1.0 / (self.rank_constant + rank)
                first.setdefault(key, chunk)
        fused = sorted(scores, key=lambda key: (-scores[key], key))
        return self.tag([first[key].with_score(scores[key]) for key in fused[: self.top_k]])
