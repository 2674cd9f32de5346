"""Dense retrieval: sentence-transformers embeddings in a faiss inner-product index over
normalised vectors (cosine similarity). Uses a faiss GPU index when faiss was built with GPU
support and a GPU is present."""

from __future__ import annotations

from ragpress.core.extras import require

require("faiss", "sentence_transformers", what="DenseRetriever")

import dataclasses
import warnings
from pathlib import Path
from typing import ClassVar

import faiss
import numpy as np

from ragpress.core.loaders import load_embedder
from ragpress.core.types import Chunk
from ragpress.retrievers.base import Retriever


@dataclasses.dataclass
class DenseRetriever(Retriever):
    method: ClassVar[str] = "dense"
    model: str = "minilm-l6"
    batch_size: int = 64
    device: str | None = None

    def build(self, chunks: list[Chunk]) -> None:
        embedder = load_embedder(self.model, self.device)
        self._warn_truncation(embedder, chunks)
        vectors = embedder.encode(
            [c.text for c in chunks],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(chunks) > self.batch_size,
        )
        self._set_index(_flat_index(np.asarray(vectors, dtype=np.float32)))

    def search(self, query: str, top_k: int) -> list[Chunk]:
        return self.search_batch([query], top_k)[0]

    def search_batch(self, queries: list[str], top_k: int) -> list[list[Chunk]]:
        vectors = load_embedder(self.model, self.device).encode(queries, normalize_embeddings=True, convert_to_numpy=True)
        scores, ids = self._index.search(np.asarray(vectors, dtype=np.float32), min(top_k, len(self.chunks)))
        return [[self.chunks[i].with_score(s) for s, i in zip(row_s, row_i) if i >= 0] for row_s, row_i in zip(scores, ids)]

    def save_index(self, path: Path) -> None:
        index = faiss.index_gpu_to_cpu(self._index) if _on_gpu(self._index) else self._index
        faiss.write_index(index, str(path / "index.faiss"))

    def load_index(self, path: Path, chunks: list[Chunk]) -> None:
        self._set_index(faiss.read_index(str(path / "index.faiss")))

    def _set_index(self, index) -> None:
        if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 and self.device != "cpu":
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        self._index = index

    def _warn_truncation(self, embedder, chunks: list[Chunk]) -> None:
        limit = embedder.max_seq_length
        lengths = [len(x) for x in embedder.tokenizer([c.text for c in chunks], add_special_tokens=True, verbose=False)["input_ids"]]
        over = sum(n > limit for n in lengths)
        if over:
            warnings.warn(
                f"{over} of {len(chunks)} chunks are longer than {self.model}'s {limit}-token window and are embedded "
                f"from their first {limit} tokens only; chunk with max_tokens <= {limit - 2} to embed all text.",
                stacklevel=3,
            )


def _flat_index(vectors: np.ndarray):
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def _on_gpu(index) -> bool:
    return hasattr(faiss, "GpuIndex") and isinstance(index, faiss.GpuIndex)
