"""The baseline compressor: keep whole retrieved chunks, best first, while they fit a token budget.
Nothing is rewritten, so every piece is an exact span of its source."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from ragpress.compressors.base import Compressor
from ragpress.core.errors import BudgetError
from ragpress.core.types import Chunk, Context


@dataclasses.dataclass
class BudgetPacker(Compressor):
    """Packs chunks in the order given (rank order) while they fit ``budget`` tokens, skipping any
    that would overflow it and repeated spans; ``order="source"`` then shows the kept pieces in
    document order instead of rank order."""

    method: ClassVar[str] = "budget_packer"
    budget: int = 512
    order: Literal["rank", "source"] = "rank"
    tokenizer: str = "smollm2-135m"  # counts the budget: the generator's tokenizer

    def __post_init__(self):
        if self.budget < 1:
            raise ValueError(f"budget must be at least 1 token, got {self.budget}.")
        if self.order not in ("rank", "source"):
            raise ValueError(f"order must be 'rank' or 'source', got {self.order!r}.")

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        counts = [self.count_tokens(c.text) for c in chunks]
        seen, kept, used = set(), [], 0
        for chunk, count in zip(chunks, counts):
            key = (chunk.doc_id, chunk.start, chunk.end)
            if key not in seen and used + count <= self.budget:
                seen.add(key)
                kept.append(chunk)
                used += count
        if chunks and not kept:
            raise BudgetError(
                f"budget={self.budget} tokens is smaller than every retrieved chunk (the smallest has {min(counts)}); "
                "raise the budget or chunk with a smaller max_tokens."
            )
        if self.order == "source":
            kept.sort(key=lambda c: (c.doc_id, c.start))
        return Context(query=query, pieces=tuple(kept), tokens_before=sum(counts), tokens_after=used)
