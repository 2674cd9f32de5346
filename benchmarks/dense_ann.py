"""DenseRetriever's index kinds side by side: flat (exact), IVF and HNSW at their defaults.

For each corpus: build seconds, latency of one batch of 100 query vectors (median of 3), the
index's size on disk (what it holds in memory, near enough), and recall@10 against flat. Corpora:
synthetic 384-d vectors (MiniLM's width) with a low-dimensional cluster structure at each ``--sizes``, and real MiniLM embeddings
of the sentences of the Python reference topics (``pydoc_data``) and the first paragraph of every
stdlib module docstring, with 100 held-out passages as queries. Query embedding time is left out:
every kind pays it alike.

    python -m benchmarks.dense_ann [--sizes 10000 100000] [--skip-real]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks._common import print_table
from ragpress.core import Chunk, Document
from ragpress.retrievers.dense import DenseRetriever

DIM = 384
QUERIES = 100
TOP_K = 10


def clustered(size: int, queries: int, seed: int = 0, latent: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``size`` corpus and ``queries`` query vectors, unit length: a mixture of ``size // 1000``
    Gaussians in a ``latent``-dimensional space, mapped linearly to 384 dimensions, plus noise, since
    sentence embeddings fill a space of far fewer dimensions than they have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(10, size // 1000), latent), dtype=np.float32)
    codes = centres[rng.integers(0, len(centres), size + queries)]
    codes += 0.7 * rng.standard_normal(codes.shape, dtype=np.float32)
    points = codes @ rng.standard_normal((latent, DIM), dtype=np.float32)
    points += 0.5 * rng.standard_normal(points.shape, dtype=np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points[:size], points[size:]


def real_minilm() -> tuple[np.ndarray, np.ndarray]:
    """MiniLM embeddings of real passages; every 50th passage is held out as a query."""
    import pydoc_data.topics

    from ragpress.chunkers.sentence import split_sentences
    from ragpress.core.loaders import load_embedder
    from ragpress.corpora import stdlib_docstrings

    texts = [t[a:b] for _, t in sorted(pydoc_data.topics.topics.items()) for a, b in split_sentences(t) if b - a >= 20]
    texts += [d.split("\n\n")[0] for _, docs in stdlib_docstrings() for d in docs if len(d) >= 40]
    embedder = load_embedder("minilm-l6", "cpu")
    vectors = embedder.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    held = np.arange(len(texts)) % 50 == 0
    questions = [t for t, h in zip(texts, held) if h][:QUERIES]
    start = time.perf_counter()
    embedder.encode(questions, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    print(f"MiniLM embeds those {len(questions)} query passages in {1000 * (time.perf_counter() - start):.0f} ms (one batch)")
    return vectors[~held], vectors[held][:QUERIES]


def measure(kind: str, corpus: np.ndarray, queries: np.ndarray, exact: np.ndarray | None) -> tuple[list, np.ndarray]:
    """One table row for ``kind`` and the ids it found (the ground truth when ``kind`` is flat)."""
    doc = Document("x" * len(corpus))
    chunks = [Chunk.of(doc, i, i + 1) for i in range(len(corpus))]
    retriever = DenseRetriever(index_type=kind, device="cpu")
    start = time.perf_counter()
    retriever.index_vectors(chunks, corpus)
    build = time.perf_counter() - start
    latencies = []
    for _ in range(3):
        start = time.perf_counter()
        found = retriever.search_vectors(queries, TOP_K)
        latencies.append(time.perf_counter() - start)
    ids = np.array([[c.start for c in hits] + [-1] * (TOP_K - len(hits)) for hits in found])
    with tempfile.TemporaryDirectory() as folder:
        retriever.save_index(Path(folder))
        mib = (Path(folder) / "index.faiss").stat().st_size / 2**20
    recall = 1.0 if exact is None else np.mean([len(set(a) & set(b)) / TOP_K for a, b in zip(ids, exact)])
    auto = DenseRetriever().kind_for(len(corpus))
    return [kind + (" (auto)" if kind == auto else ""), f"{build:.1f}", f"{1000 * statistics.median(latencies):.1f}", f"{mib:.0f}", f"{recall:.3f}"], ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; defaults {DenseRetriever()}")
    corpora = [(f"clustered {n:,}", *clustered(n, QUERIES)) for n in args.sizes]
    if not args.skip_real:
        start = time.perf_counter()
        corpus, queries = real_minilm()
        print(f"embedded {len(corpus) + len(queries):,} real passages with MiniLM in {time.perf_counter() - start:.0f}s")
        corpora.append((f"MiniLM real {len(corpus):,}", corpus, queries))
    rows = []
    for name, corpus, queries in corpora:
        row, exact = measure("flat", corpus, queries, None)
        rows.append([name, *row])
        for kind in ("ivf", "hnsw"):
            rows.append([name, *measure(kind, corpus, queries, exact)[0]])
    print_table(["corpus", "index", "build s", f"{QUERIES} queries ms", "size MiB", f"recall@{TOP_K}"], rows, "llrrrr")


if __name__ == "__main__":
    main()
