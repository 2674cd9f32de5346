"""Dense retrieval: sentence-transformers embeddings in a faiss inner-product index over
normalised vectors (cosine similarity). Exact (flat) for small corpora, approximate (IVF or HNSW)
for large ones; on a faiss GPU index when faiss was built with GPU support and a GPU is present."""

from __future__ import annotations

from ragpress.core.extras import require

require("faiss", "sentence_transformers", what="DenseRetriever")

import dataclasses
import math
from pathlib import Path
from typing import ClassVar

import faiss
import numpy as np

from ragpress.core.stage import check_chunks
from ragpress.core.types import Chunk
from ragpress.retrievers.base import Retriever
from ragpress.retrievers.embedding import embed_texts

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")
HNSW_M = 32  # graph degree: faiss's guidelines use HNSW32 as the default ("M between 4 and 64")
MIN_POINTS_PER_LIST = 39  # faiss's k-means warns below 39 training points per centroid
TRAIN_POINTS_PER_LIST = 64  # k-means sample: inside the wiki's 30*nlist..256*nlist, 4x cheaper than faiss's 256


@dataclasses.dataclass
class DenseRetriever(Retriever):
    """Embeds chunks with ``model`` and searches them by cosine similarity in a faiss index.

    ``index_type`` picks the index, following faiss's "Guidelines to choose an index"
    (github.com/facebookresearch/faiss/wiki/Guidelines-to-choose-an-index):

    - ``"flat"``: exact search (``IndexFlatIP``), O(N) per query, no training. The only index that
      guarantees exact results; cheap while N is small.
    - ``"ivf"``: ``IVF<nlist>,Flat``: k-means splits the vectors into ``nlist`` lists and a query
      scans the ``nprobe`` nearest lists. ``nlist=None`` takes the wiki's lower bound for
      "below 1M vectors", 4*sqrt(N) (capped at N/39, the fewest training points per centroid
      faiss's k-means accepts without a warning), and k-means trains on at most 64 points a list
      (the wiki asks for 30 to 256). k-means is seeded with ``seed``, so a fixed seed gives the
      same index. Supported on GPU.
    - ``"hnsw"``: ``HNSW32``, a graph searched with ``ef_search`` candidates; the wiki's choice when
      memory is no concern. Needs no training (built 2-3x faster than IVF on 2 CPU cores) but
      holds a graph (17% more memory) and has no faiss GPU index (it stays on the CPU). Its graph is built with parallel inserts, so with several threads two
      builds may differ in rare ties; IVF and flat are deterministic.
    - ``"auto"`` (default): flat below ``exact_below`` vectors, IVF from there on. Flat's cost grows
      with N (100 queries: 0.39 s at 100K vectors, 5.3 s at 1M on 2 CPU cores), while below 50K it
      stays under what embedding the queries costs, so exactness is free there; above it IVF answers
      in tens of ms, is deterministic and runs on GPU, where HNSW does not (benchmarks/RESULTS.md,
      "Approximate dense index").

    Defaults ``nprobe=32`` and ``ef_search=64`` gave recall@10 against flat of 0.999 to 1.000 (IVF)
    and 0.962 to 0.987 (HNSW) on clustered synthetic 384-d vectors at 100K to 1M, and 0.977 (IVF) and
    0.998 (HNSW) on 6.4K real MiniLM embeddings; raise them for more recall at more latency.
    """

    method: ClassVar[str] = "dense"
    model: str = "minilm-l6"
    batch_size: int = 64
    device: str | None = None
    dtype: str | None = None  # the embedder's; None: its checkpoint's own (float32 for the bundled MiniLM)
    index_type: str = "auto"
    exact_below: int = 50_000
    nlist: int | None = None
    nprobe: int = 32
    ef_search: int = 64
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {self.index_type!r}.")
        for name in ("exact_below", "nprobe", "ef_search"):
            _check_positive(name, getattr(self, name))
        if self.nlist is not None:
            _check_positive("nlist", self.nlist)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed (for IVF's k-means) must be an int, got {self.seed!r}.")

    def build(self, chunks: list[Chunk]) -> None:
        vectors = embed_texts(self.model, self.device, [c.text for c in chunks], self.batch_size, chunks=True, dtype=self.dtype)
        self._set_index(self._build_index(vectors))

    def index_vectors(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Index ``chunks`` with embeddings computed elsewhere (one row per chunk, normalised here),
        e.g. by a batch job that embedded them with this retriever's ``model``."""
        chunks = check_chunks(chunks, allow_empty=False)
        vectors = _normalised(vectors)
        if vectors.ndim != 2 or len(vectors) != len(chunks):
            raise ValueError(f"vectors must be a 2-d array with one row per chunk ({len(chunks)}), got shape {vectors.shape}.")
        self._set_index(self._build_index(vectors))
        self._chunks = chunks

    def kind_for(self, size: int) -> str:
        """The index kind built for ``size`` vectors: ``index_type``, or with ``"auto"`` flat below
        ``exact_below`` and IVF from there on."""
        if self.index_type != "auto":
            return self.index_type
        return "flat" if size < self.exact_below else "ivf"

    def search(self, query: str, top_k: int) -> list[Chunk]:
        return self.search_batch([query], top_k)[0]

    def search_batch(self, queries: list[str], top_k: int) -> list[list[Chunk]]:
        return self.search_vectors(embed_texts(self.model, self.device, queries, dtype=self.dtype), top_k)

    def search_vectors(self, vectors: np.ndarray, top_k: int) -> list[list[Chunk]]:
        """The ``top_k`` chunks (best first, with their cosine scores) for each query embedding."""
        chunks, vectors = self.chunks, _normalised(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self._index.d:
            raise ValueError(f"query vectors have {vectors.shape[-1]} dimensions; the index has {self._index.d}: embed queries with {self.model}.")
        scores, ids = self._index.search(vectors, min(top_k, len(chunks)))
        return [[chunks[i].with_score(s) for s, i in zip(row_s, row_i) if i >= 0] for row_s, row_i in zip(scores, ids)]

    def save_index(self, path: Path) -> None:
        index = faiss.index_gpu_to_cpu(self._index) if _on_gpu(self._index) else self._index
        faiss.write_index(index, str(path / "index.faiss"))

    def load_index(self, path: Path, chunks: list[Chunk]) -> None:
        self._set_index(faiss.read_index(str(path / "index.faiss")))

    def _build_index(self, vectors: np.ndarray):
        size, dim = vectors.shape
        kind = self.kind_for(size)
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        else:
            nlist = self.nlist or max(1, min(round(4 * math.sqrt(size)), size // MIN_POINTS_PER_LIST))
            if nlist > size:
                raise ValueError(f"nlist={nlist} IVF lists need at least as many vectors; got {size}: lower nlist or use index_type='flat'.")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = self.seed
            index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
            index.train(vectors)
        index.add(vectors)
        return index

    def _set_index(self, index) -> None:
        """Apply the search settings (nprobe, efSearch) to a CPU index, then move it to the GPU when
        faiss has one and ``device`` allows (HNSW has no faiss GPU index and stays here)."""
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = min(self.nprobe, index.nlist)
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = self.ef_search
        elif hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 and self.device != "cpu":
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        self._index = index



def _check_positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _normalised(vectors) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 copy with unit rows (inner product = cosine)."""
    vectors = np.array(vectors, dtype=np.float32, order="C")
    if vectors.ndim == 2:
        faiss.normalize_L2(vectors)
    return vectors


def _on_gpu(index) -> bool:
    return hasattr(faiss, "GpuIndex") and isinstance(index, faiss.GpuIndex)
