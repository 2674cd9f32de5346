"""Compressors: ``query, list[Chunk] -> Context``.

The base class checks input, hands the method the rest, and tags the Context with the method's
name. Extractive methods return pieces that are exact spans of the sources; soft methods return
embeddings. Token counts (budgets, ``tokens_before``/``tokens_after``) use one tokenizer, chosen by
one rule (:attr:`Compressor.counting_model`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ragpress.core.loaders import load_tokenizer
from ragpress.core.stage import Stage, check_chunks, check_query
from ragpress.core.types import Chunk, Context

if TYPE_CHECKING:  # torch is needed only by soft compressors
    from ragpress.compressors.segment_cache import SegmentCache


@dataclasses.dataclass
class Compressor(Stage):
    kind: ClassVar[str] = "compressor"

    def run(self, query: str, chunks: list[Chunk]) -> Context:
        return self.run_batch([query], [chunks])[0]

    def run_batch(self, queries: list[str], chunks: list[list[Chunk]]) -> list[Context]:
        """One Context per ``(query, chunks)`` pair, through :meth:`compress_batch` in one call."""
        pairs = list(zip(queries, chunks, strict=True))
        return [self.tag(c) for c in self.compress_batch([check_query(q) for q, _ in pairs], [check_chunks(c) for _, c in pairs])]

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        raise NotImplementedError

    def compress_batch(self, queries: list[str], chunks: list[list[Chunk]]) -> list[Context]:
        """:meth:`compress` over many queries; methods that can pack their model calls across
        queries override it (with results equal to :meth:`compress`, to float tolerance)."""
        return [self.compress(q, c) for q, c in zip(queries, chunks)]

    @property
    def counting_model(self) -> str:
        """The model whose tokenizer counts this compressor's tokens: its ``tokenizer`` setting
        (compressors without a model of their own, or whose model is not the generator's), else
        the ``decoder`` its output is made for, else the ``model`` it runs."""
        for name in ("tokenizer", "decoder", "model"):
            if isinstance(getattr(self, name, None), str):
                return getattr(self, name)
        raise TypeError(f"{type(self).__name__} names no tokenizer, decoder or model to count tokens with.")

    def count_tokens(self, text: str) -> int:
        return len(load_tokenizer(self.counting_model)(text, add_special_tokens=False)["input_ids"])


@dataclasses.dataclass
class SoftCompressor(Compressor):
    """A compressor that returns soft embeddings for one decoder. What it computes for a piece of
    text depends only on that text and on :meth:`identity`, so results are cached by content in a
    :class:`SegmentCache`; ``cache`` names a safetensors file read on first use (refused when it was
    made under another identity) and written by :meth:`save_cache`."""

    cache: str | None = None

    def identity(self) -> dict[str, str]:
        """What a cached result depends on: decoder, its config, trained weights, settings."""
        raise NotImplementedError

    @property
    def segment_cache(self) -> SegmentCache:
        from ragpress.compressors.segment_cache import SegmentCache

        if self.__dict__.get("_segment_cache") is None:
            identity = self.identity()
            exists = self.cache is not None and Path(self.cache).exists()
            self._segment_cache = SegmentCache.load(self.cache, identity) if exists else SegmentCache(identity)
        return self._segment_cache

    def save_cache(self, path: str | Path | None = None) -> Path:
        target = path or self.cache
        if target is None:
            raise ValueError(f"Where should the cache go? Pass a path or set {type(self).__name__}(cache='segments.safetensors').")
        return self.segment_cache.save(target)

    def precompute(self, chunks: list[Chunk]) -> SegmentCache:
        """What :meth:`compress` would cache for ``chunks``, as a new cache (this compressor's own is
        left alone): a batch job fills the cache of a whole corpus this way, so that compressing a
        retrieved chunk later computes nothing. A copy of this compressor does the compressing, so
        the segments are cut and keyed exactly as at query time; the model is shared, not reloaded."""
        worker = dataclasses.replace(self, cache=None)
        texts = [chunk for chunk in chunks if chunk.text.strip()]
        if texts:
            worker.compress("", texts)
        return worker.segment_cache
