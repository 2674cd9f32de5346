"""LanceDBRetriever at 10K and 100K rows of synthetic 384-d vectors (MiniLM's width): write rate,
IVF-PQ build time, upsert and delete latency, and per-query search latency and recall@10 of the
ANN index against exact search on the same table. Vectors are clustered (N/100 Gaussian centres,
unit noise), queries are data points plus noise, so each query has true near neighbours; the
embedder is replaced by a lookup so only the store is timed.

    python -m benchmarks.lancedb_store [--rows 10000 100000] [--queries 100] [--nprobes 20 60]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence

import numpy as np

from benchmarks._common import print_table, timed
from ragpress.core.types import Chunk, Document
from ragpress.retrievers.lancedb import LanceDBRetriever

DIM, PER_DOC, WIDTH = 384, 1000, 9  # a row's text is "c0000042 " (WIDTH chars); a document holds PER_DOC rows
VECTORS: dict[str, np.ndarray] = {}
HEADER = ["rows", "nprobes", "write rows/s", "IVF-PQ build s", "exact ms p50/p99", "ANN ms p50/p99", "ANN + where ms p50/p99",
          "recall@10 ANN vs exact", f"upsert {PER_DOC} new / again ms", f"delete {PER_DOC} ms"]


class SyntheticStore(LanceDBRetriever):
    """A LanceDBRetriever whose "embedder" looks vectors up by row or query text."""

    def embed(self, texts: list[str], chunks: bool = False) -> np.ndarray:
        return np.stack([VECTORS[t[0]][int(t[1:])] for t in texts])


def corpus(rows: int, queries: int, seed: int = 0) -> list[Chunk]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(rows // 100, 1), DIM), dtype=np.float32)
    data = centres[rng.integers(0, len(centres), rows + PER_DOC)] + rng.standard_normal((rows + PER_DOC, DIM), dtype=np.float32)
    probes = data[rng.integers(0, rows, queries)] + 0.5 * rng.standard_normal((queries, DIM), dtype=np.float32)
    VECTORS["c"], VECTORS["q"] = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (data, probes))
    chunks = []
    for first in range(0, rows + PER_DOC, PER_DOC):  # one extra document, kept back for the upsert
        doc = Document("".join(f"c{i:07d} " for i in range(first, first + PER_DOC)), id=f"doc{first // PER_DOC}")
        chunks += [Chunk.of(doc, k * WIDTH, (k + 1) * WIDTH - 1) for k in range(PER_DOC)]
    return chunks


def latencies(store: LanceDBRetriever, queries: list[str], **where) -> tuple[np.ndarray, list[list[Chunk]]]:
    runs = [timed(store.run, q, **where) for q in queries]
    return np.array([t for t, _ in runs]) * 1000, [hits for _, hits in runs]


def measure(rows: int, n_queries: int, folder: str, nprobes: Sequence[int] = (20,)) -> list[tuple]:
    """One row of :data:`HEADER` for each of ``nprobes`` (the ANN columns searched with it), on one pair of tables."""
    chunks = corpus(rows, n_queries)
    data, extra = chunks[:rows], chunks[rows:]
    queries = [f"q{j}" for j in range(n_queries)]
    exact = SyntheticStore(uri=folder, table=f"exact{rows}", top_k=10, vector_index="exact")
    ann = SyntheticStore(uri=folder, table=f"ann{rows}", top_k=10, vector_index="ann")
    write, _ = timed(exact.index, data)
    write_and_build, _ = timed(ann.index, data)
    exact_ms, truth = latencies(exact, queries)
    searched = []
    for n in nprobes:
        ann.nprobes = n
        ann_ms, found = latencies(ann, queries)
        filtered_ms, hits = latencies(ann, queries, where={"doc_id": ["doc1", "doc5", "doc7"]})
        assert all(h.doc_id in {"doc1", "doc5", "doc7"} for row in hits for h in row)
        recall = np.mean([len({(h.doc_id, h.start) for h in f} & {(h.doc_id, h.start) for h in t}) / len(t) for f, t in zip(found, truth)])
        searched.append((n, ann_ms, filtered_ms, recall))
    upsert, _ = timed(ann.add, extra)
    again, _ = timed(ann.add, extra)
    assert ann.open_table().count_rows() == rows + PER_DOC, "re-adding added rows"
    delete, _ = timed(ann.delete, [extra[0].doc_id])
    ms = lambda a: f"{np.percentile(a, 50):.1f} / {np.percentile(a, 99):.1f}"  # noqa: E731
    return [(f"{rows:,}", n, f"{rows / write:,.0f}", f"{write_and_build - write:.1f}", ms(exact_ms), ms(ann_ms), ms(filtered_ms),
             f"{recall:.3f}", f"{upsert * 1000:.0f} / {again * 1000:.0f}", f"{delete * 1000:.0f}") for n, ann_ms, filtered_ms, recall in searched]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[20], help="IVF partitions each ANN search probes: a row for each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [row for n in args.rows for row in measure(n, args.queries, folder, args.nprobes)]
    print_table(HEADER, rows, "r" * len(HEADER))


if __name__ == "__main__":
    main()
