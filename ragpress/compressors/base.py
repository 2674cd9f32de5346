"""Compressors: ``query, list[Chunk] -> Context``.

The base class checks input, counts the tokens of the chunks it was given (``tokens_before``) with
the compressor's tokenizer, and hands the method the rest. Extractive methods return pieces that
are exact spans of the sources; soft methods return embeddings.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ragpress.core.models import load_tokenizer
from ragpress.core.stage import Stage, check_chunks, check_query
from ragpress.core.types import Chunk, Context


@dataclasses.dataclass
class Compressor(Stage):
    kind: ClassVar[str] = "compressor"
    tokenizer: str = "smollm2-135m"

    def run(self, query: str, chunks: list[Chunk]) -> Context:
        return self.compress(check_query(query), check_chunks(chunks))

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return len(load_tokenizer(self.tokenizer)(text, add_special_tokens=False)["input_ids"])
