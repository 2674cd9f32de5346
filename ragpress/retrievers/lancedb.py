"""LanceDB retrieval: sentence-transformers embeddings in a LanceDB table, an embedded store on
disk (no server) that many readers can open and that changes in place: :meth:`add` upserts chunks by
a stable id, :meth:`delete` drops documents, and ``where`` filters on columns or user metadata
before ranking.

Search is exact (flat) below ``ann_threshold`` rows. LanceDB's guide ("Vector Indexing: Do you need
one?", docs.lancedb.com/indexing/vector-index) finds an index usually unnecessary around 100K rows
or fewer, and advises IVF_PQ (or IVF_RQ) over HNSW-backed indexes when searches carry ``where``
filters; so at the threshold (100K by default) an IVF-PQ index is built once with LanceDB's default
partitions (sqrt of the rows) and sub-vectors, and searched with ``nprobes`` partitions, the best
``refine_factor * top_k`` candidates re-ranked on full vectors. A fixed ``nprobes`` loses recall as the
table grows (20 probes: recall@10 0.999 at 100K rows, 0.956 at 300K, 0.79-0.81 at 1M; benchmarks/RESULTS.md),
so by default it follows the index: 10 % of its partitions, at least 20 (0.990-0.997 at 1M, measured)."""

from __future__ import annotations

from ragpress.core.extras import require

require("lancedb", "sentence_transformers", what="LanceDBRetriever")

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.expr import col, lit

from ragpress.core.settings import guarded
from ragpress.core.stage import check_chunks
from ragpress.core.types import Chunk
from ragpress.retrievers.base import Retriever
from ragpress.retrievers.embedding import embed_texts

COLUMNS = ("chunk_id", "doc_id", "start", "end", "token_count")  # what ``where`` may name, besides ``metadata``
JSON_GETTERS = {bool: "json_get_bool", int: "json_get_int", float: "json_get_float", str: "json_get_string"}


@dataclasses.dataclass
class LanceDBRetriever(Retriever):
    method: ClassVar[str] = "lancedb"
    uri: str = guarded("ragpress.lancedb", "path")  # a pipeline file may not point it elsewhere (ragpress.core.settings)
    table: str = "chunks"
    model: str = "minilm-l6"
    vector_index: Literal["auto", "exact", "ann"] = "auto"  # auto: ANN once the table has ann_threshold rows
    ann_threshold: int = 100_000
    nprobes: int | None = None  # None: max(20, 10 % of the index's sqrt(rows) partitions), see the module docstring
    refine_factor: int = 10
    batch_size: int = 64
    device: str | None = None

    @property
    def indexed(self) -> bool:
        return self.table in self.database()

    @property
    def chunks(self) -> list[Chunk]:
        """Every chunk in the table (read from disk: the table, not this object, holds the index)."""
        self._check_indexed()
        return [stored_chunk(row) for row in self.open_table().to_arrow().to_pylist()]

    def index(self, chunks: list[Chunk]) -> None:
        """Replace the table with ``chunks`` (the base class's copy in memory is not kept)."""
        self.build(check_chunks(chunks, allow_empty=False))

    def build(self, chunks: list[Chunk]) -> None:
        self.database().create_table(self.table, data=self._rows(_unique(chunks)), mode="overwrite")
        self.grow_index()

    def upsert(self, chunks: list[Chunk]) -> None:
        """Embed and insert only the chunks whose id the table lacks; ``merge_insert`` on the id keeps
        a concurrent or retried writer from adding a row twice."""
        table, fresh = self.open_table(), _unique(chunks)
        if fresh:
            have = set(table.search().where(col("chunk_id").isin(list(fresh))).select(["chunk_id"]).limit(len(fresh)).to_arrow()["chunk_id"].to_pylist())
            fresh = {key: chunk for key, chunk in fresh.items() if key not in have}
        if fresh:
            table.merge_insert("chunk_id").when_not_matched_insert_all().execute(self._rows(fresh))
            self.grow_index()

    def append(self, rows: pa.Table) -> None:
        """Add rows embedded elsewhere (:func:`stored_rows`; a batch job's workers) to the table,
        creating it on first use. Nothing is checked against the rows already there: the caller
        writes each chunk id once (:mod:`ragpress.scale` does), which keeps a long job's writes
        from scanning the table; :meth:`add` is the safe way for anything else."""
        if self.indexed:
            self.open_table().add(rows)
        else:
            self.database().create_table(self.table, data=rows)

    def remove(self, doc_ids: list[str]) -> None:
        if doc_ids:
            self.open_table().delete(col("doc_id").isin(doc_ids))

    def search_batch(self, queries: list[str], top_k: int) -> list[list[Chunk]]:
        return self.search_where(queries, top_k, {})

    def search_where(self, queries: list[str], top_k: int, where: Mapping[str, Any]) -> list[list[Chunk]]:
        """The ``top_k`` nearest chunks by cosine similarity (the score) among those matching ``where``."""
        condition, table = where_sql(where), self.open_table()
        probes, found = self.probes(table), []
        for vector in self.embed(queries):
            search = table.search(vector).distance_type("cosine").limit(top_k)
            search = search.bypass_vector_index() if self.vector_index == "exact" else search.nprobes(probes).refine_factor(self.refine_factor)
            rows = (search.where(condition, prefilter=True) if condition else search).to_arrow().to_pylist()
            found.append([stored_chunk(row).with_score(1.0 - row["_distance"]) for row in rows])
        return found

    def probes(self, table: Any) -> int:
        """``nprobes`` if set, else 10 % of the ANN index's partitions (LanceDB builds sqrt(rows) of
        them), at least 20; 20 while the table has no index (the search is exact then anyway)."""
        if self.nprobes is not None:
            return self.nprobes
        index = next((ix for ix in table.list_indices() if ix.columns == ["vector"]), None)
        rows = table.index_stats(index.name).num_indexed_rows if index else 0
        return max(20, math.ceil(0.1 * math.sqrt(rows)))

    def save_index(self, path: Path) -> None:
        """Nothing to copy: the table at ``uri`` is the index, already on disk."""

    def load_index(self, path: Path, chunks: list[Chunk]) -> None:
        """Serve the table at ``uri`` if it still holds exactly the saved chunks."""
        saved = {chunk_id(c) for c in chunks}
        if not self.indexed or set(self.open_table().search().select(["chunk_id"]).to_arrow()["chunk_id"].to_pylist()) != saved:
            raise ValueError(f"The LanceDB table {self.table!r} at {self.uri} no longer holds the saved chunks: index them again.")

    def grow_index(self) -> None:
        """Build the ANN index once the table is big enough (``auto``) or at once (``ann``); rows
        added later are searched exactly beside it until ``table.optimize()`` folds them in."""
        table = self.open_table()
        wanted = self.vector_index == "ann" or (self.vector_index == "auto" and table.count_rows() >= self.ann_threshold)
        if wanted and not any(ix.columns == ["vector"] for ix in table.list_indices()):
            table.create_index(metric="cosine", index_type="IVF_PQ", vector_column_name="vector")

    def _rows(self, chunks: dict[str, Chunk]) -> pa.Table:
        return stored_rows(chunks, self.embed([c.text for c in chunks.values()], chunks=True))

    def embed(self, texts: list[str], chunks: bool = False) -> np.ndarray:
        """Unit-length embeddings of ``texts``: queries, or with ``chunks`` the rows to store (see
        :func:`~ragpress.retrievers.embedding.embed_texts`); override it to store vectors computed
        elsewhere (a batch job, a benchmark's synthetic ones)."""
        return embed_texts(self.model, self.device, texts, self.batch_size, chunks)

    def database(self):
        """The LanceDB connection to the folder (or bucket) at ``uri``."""
        if getattr(self, "_connection", (None,))[0] != self.uri:  # uri is a plain attribute: reconnect if it changed
            self._connection = (self.uri, lancedb.connect(self.uri))
        return self._connection[1]

    def open_table(self):
        """The LanceDB table itself, for what this class does not wrap (``optimize``, versions, SQL)."""
        return self.database().open_table(self.table)


def stored_rows(chunks: Mapping[str, Chunk], vectors: np.ndarray) -> pa.Table:
    """The table rows of ``chunks`` (keyed by :func:`chunk_id`) with their unit-length ``vectors``."""
    columns = {
        "chunk_id": list(chunks),
        "doc_id": [c.doc_id for c in chunks.values()],
        "start": [c.start for c in chunks.values()],
        "end": [c.end for c in chunks.values()],
        # UTF-8 with lone surrogates kept (surrogatepass): the text is stored exactly as the source holds it
        "text": [c.text.encode("utf-8", "surrogatepass") for c in chunks.values()],
        "token_count": [c.token_count for c in chunks.values()],
        "metadata": [json.dumps(dict(c.metadata)) for c in chunks.values()],
        "children": [json.dumps([child.to_dict() for child in c.children]) for c in chunks.values()],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
    }
    return pa.table(columns, schema=_schema(vectors.shape[1]))


def chunk_id(chunk: Chunk) -> str:
    """A stable id for ``chunk``: a hash of its document id, offsets and text, the same in every
    process and run, so re-adding a chunk finds it."""
    text = hashlib.sha256(chunk.text.encode("utf-8", "surrogatepass")).hexdigest()
    return hashlib.sha256(json.dumps([chunk.doc_id, chunk.start, chunk.end, text]).encode()).hexdigest()[:32]


def where_sql(where: Mapping[str, Any]) -> str:
    """A LanceDB filter from plain values: ``{"doc_id": ["a", "b"], "metadata": {"lang": "en"}}``
    means ``doc_id IN ('a', 'b') AND metadata.lang = 'en'``; a list means any of, a single value
    equals. Names are checked against :data:`COLUMNS` and every value becomes a literal quoted by
    LanceDB's expression builder, so no text from the caller is read as SQL."""
    if not isinstance(where, Mapping):
        raise TypeError(f"where must be a mapping of column to value(s), e.g. {{'doc_id': ['a', 'b']}}; got {type(where).__name__}.")
    parts = []
    for name, wanted in where.items():
        if name == "metadata":
            if not isinstance(wanted, Mapping) or not wanted:
                raise ValueError(f"where['metadata'] must be a non-empty mapping of metadata key to value(s), got {wanted!r}.")
            parts += [_metadata_sql(key, value) for key, value in wanted.items()]
        elif name in COLUMNS:
            values = _values(name, wanted)
            parts.append(col(name).isin(values).to_sql() if len(values) > 1 else (col(name) == lit(values[0])).to_sql())
        else:
            raise ValueError(f"where may name {list(COLUMNS) + ['metadata']}, not {name!r}; filter user metadata as where={{'metadata': {{key: value}}}}.")
    return " AND ".join(f"({part})" for part in parts)


def _metadata_sql(key: str, wanted: Any) -> str:
    values = _values(f"metadata[{key!r}]", wanted)
    if not isinstance(key, str) or len({type(v) for v in values}) != 1:
        raise ValueError(f"Filter metadata by a str key and values of one type, got {key!r}: {values!r}.")
    value = f"{JSON_GETTERS[type(values[0])]}(metadata, {lit(key).to_sql()})"
    literals = ", ".join(lit(v).to_sql() for v in values)
    return f"{value} IN ({literals})" if len(values) > 1 else f"{value} = {literals}"


def _values(name: str, wanted: Any) -> list:
    values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
    if not values or not all(type(v) in JSON_GETTERS for v in values):
        raise ValueError(f"where[{name!r}] must be a str, int, float or bool, or a non-empty list of them; got {wanted!r}.")
    return values


def _unique(chunks: list[Chunk]) -> dict[str, Chunk]:
    return {chunk_id(c): c for c in chunks}


def stored_chunk(row: Mapping[str, Any]) -> Chunk:
    children = tuple(Chunk.from_dict(c) for c in json.loads(row["children"]))
    return Chunk(doc_id=row["doc_id"], start=row["start"], end=row["end"], text=row["text"].decode("utf-8", "surrogatepass"),
                 token_count=row["token_count"], metadata=json.loads(row["metadata"]), children=children)


def _schema(dim: int) -> pa.Schema:
    return pa.schema([
        ("chunk_id", pa.string()), ("doc_id", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
        ("text", pa.large_binary()), ("token_count", pa.int64()),
        ("metadata", pa.json_(pa.utf8())),  # stored by Lance as JSON it can filter on (json_get_*)
        ("children", pa.string()), ("vector", pa.list_(pa.float32(), dim)),
    ])
