"""Lexical retrieval with Okapi BM25 (Robertson & Zaragoza, 2009) through the ``bm25s`` library."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import ClassVar

# bm25s probes JAX when imported (a top-k on its default device), and JAX's first use on a GPU takes
# 75% of its memory: on 2026-11-30 that starved the models of 8 eval workers on two H200s. Without
# preallocation JAX takes what the probe needs; a user's own setting wins.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import bm25s  # noqa: E402

from ragpress.core.types import Chunk
from ragpress.retrievers.base import Retriever


@dataclasses.dataclass
class BM25Retriever(Retriever):
    method: ClassVar[str] = "bm25"
    k1: float = 1.5
    b: float = 0.75
    stopwords: str = "en"

    def build(self, chunks: list[Chunk]) -> None:
        tokens = self._tokenize([c.text for c in chunks])
        if not tokens.vocab:
            raise ValueError("BM25 found no words to index: every chunk is punctuation, symbols or stopwords.")
        self._bm25 = bm25s.BM25(k1=self.k1, b=self.b)
        self._bm25.index(tokens, show_progress=False)

    def search(self, query: str, top_k: int) -> list[Chunk]:
        tokens = self._tokenize([query])
        if not tokens.vocab:  # only stopwords or punctuation: nothing to match
            return []
        # numpy top-k: bm25s's "auto" picks JAX where it is installed (see the import above)
        ids, scores = self._bm25.retrieve(tokens, k=min(top_k, len(self.chunks)), show_progress=False, backend_selection="numpy")
        return [self.chunks[i].with_score(s) for i, s in zip(ids[0], scores[0]) if s > 0]

    def _tokenize(self, texts: list[str]):
        # single-character words count too ("x", "0"): queries about code often hinge on them
        return bm25s.tokenize(texts, stopwords=self.stopwords, token_pattern=r"(?u)\b\w+\b", show_progress=False)

    def save_index(self, path: Path) -> None:
        self._bm25.save(str(path / "bm25"))

    def load_index(self, path: Path, chunks: list[Chunk]) -> None:
        self._bm25 = bm25s.BM25.load(str(path / "bm25"))
