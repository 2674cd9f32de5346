"""The one writer of a job: it appends the embedded chunks to the LanceDB table and keeps a
ledger table (``<table>_documents``: ``doc_id``, ``key``) of the documents whose chunks are all
stored, so the next run skips them.

Why a job never stores a chunk twice, even when a worker dies and Ray runs its batch again, or
the whole job stops half way and runs again:

- within a run, a chunk id already written is dropped (a retried batch repeats only what it gave);
- a document enters the ledger only after its last chunk is written, so a stopped run left any
  document it had started out of the ledger; the next run reads that document again and, before
  writing its first chunk, deletes every chunk the table holds under its id (a half-written or
  older version), then writes them all.

Appending without a per-row lookup keeps each write's cost independent of the table's size."""

from __future__ import annotations

import pyarrow as pa
from lancedb.expr import col

from ragpress.retrievers.lancedb import LanceDBRetriever


class Ledger:
    def __init__(self, store: LanceDBRetriever):
        self.store = store
        self.name = f"{store.table}_documents"
        # the documents the table holds chunks of, read once: a document of this run found here is replaced
        self.present = set(store.open_table().search().select(["doc_id"]).to_arrow()["doc_id"].to_pylist()) if store.indexed else set()
        self.pending: dict[str, tuple[str, int, set[str]]] = {}  # key -> doc_id, chunks expected, chunk ids written
        self.written: set[str] = set()
        self.cleared: set[str] = set()
        self.documents = 0

    def keys(self) -> frozenset[str]:
        """The keys of the documents stored complete by earlier runs."""
        if self.name not in self.store.database():
            return frozenset()
        return frozenset(self.store.database().open_table(self.name).search().select(["key"]).to_arrow()["key"].to_pylist())

    def write(self, batch: pa.Table) -> int:
        """Store the chunk rows of ``batch`` (rows of :func:`stored_rows` plus ``doc_key`` and
        ``doc_chunks``) that this run has not written yet; record the documents now complete.
        Returns the number of chunks added."""
        ids, doc_ids = batch["chunk_id"].to_pylist(), batch["doc_id"].to_pylist()
        keep = []
        for i, chunk in enumerate(ids):
            if chunk not in self.written:
                self.written.add(chunk)
                keep.append(i)
        stale = sorted({doc_ids[i] for i in keep} & self.present - self.cleared)
        if stale:
            self.store.remove(stale)
            self.cleared.update(stale)
        if keep:
            self.store.append(batch.take(keep).drop_columns(["doc_key", "doc_chunks"]))
        done = []
        for i in keep:
            key = batch["doc_key"][i].as_py()
            doc_id, expected, chunks = self.pending.setdefault(key, (doc_ids[i], batch["doc_chunks"][i].as_py(), set()))
            chunks.add(ids[i])
            if len(chunks) == expected:
                del self.pending[key]
                done.append((doc_id, key))
        self.record(done)
        return len(keep)

    def record(self, done: list[tuple[str, str]]) -> None:
        """Enter ``(doc_id, key)`` pairs in the ledger, replacing what it held for those ids."""
        if not done:
            return
        rows = pa.table({"doc_id": [d for d, _ in done], "key": [k for _, k in done]})
        db = self.store.database()
        if self.name in db:
            table = db.open_table(self.name)
            table.delete(col("doc_id").isin([d for d, _ in done]).to_sql())
            table.add(rows)
        else:
            db.create_table(self.name, data=rows)
        self.documents += len(done)

    def unfinished(self) -> list[str]:
        """Documents of which some chunks were written but not all (none once a job has finished)."""
        return sorted(doc_id for doc_id, _, _ in self.pending.values())
