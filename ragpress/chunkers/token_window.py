"""Fixed token windows: chunks of ``size`` tokens that overlap by ``overlap`` tokens, cut at token
boundaries of ``tokenizer`` and mapped back to exact character offsets."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ragpress.chunkers.base import Chunker, strip_span
from ragpress.core.loaders import load_tokenizer
from ragpress.core.types import Chunk, Document


@dataclasses.dataclass
class TokenWindowChunker(Chunker):
    method: ClassVar[str] = "token_window"
    size: int = 256
    overlap: int = 32
    tokenizer: str = "minilm-l6"

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"size must be at least 1 token, got {self.size}.")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"overlap must be in [0, size), got {self.overlap} with size {self.size}.")

    def chunk(self, document: Document) -> list[Chunk]:
        text = document.text
        offsets = load_tokenizer(self.tokenizer)(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
        if not offsets:  # only characters the tokenizer drops (control characters): keep them, as one chunk
            return [Chunk.of(document, *strip_span(text, 0, len(text)), token_count=0)]
        step = self.size - self.overlap
        firsts = list(range(0, max(1, len(offsets) - self.overlap), step))
        spans = [[offsets[i][0], offsets[min(i + self.size, len(offsets)) - 1][1]] for i in firsts]
        spans[0][0], spans[-1][1] = 0, len(text)
        for left, right in zip(spans, spans[1:]):
            if right[0] > left[1]:  # characters the tokenizer skipped (control characters) stay covered
                left[1] = right[0]
        return [Chunk.of(document, *strip_span(text, s, e), token_count=min(self.size, len(offsets) - i)) for i, (s, e) in zip(firsts, spans)]

