"""The embedding step of a Ray Data job: an actor class that loads the store's embedder once, when
the actor starts (on a GPU where the job gives it one), and turns each batch of chunks (JSON text,
:mod:`ragpress.scale.workers`) into rows of the LanceDB table
(:func:`~ragpress.retrievers.lancedb.stored_rows`)."""

from __future__ import annotations

import json

import pyarrow as pa

from ragpress.core.types import Chunk
from ragpress.retrievers.lancedb import LanceDBRetriever, chunk_id, stored_rows


class EmbedWorker:
    """Embeds a batch of chunks with ``store``'s embedder, loaded once when the worker starts, and
    returns them as rows of ``store``'s table plus ``doc_key`` and ``doc_chunks``."""

    def __init__(self, store: LanceDBRetriever):
        self.store = store
        store.embed(["load the model now"])

    def __call__(self, batch: pa.Table) -> pa.Table:
        chunks = {}
        for text in batch["chunk"].to_pylist():
            chunk = Chunk.from_dict(json.loads(text))
            chunks[chunk_id(chunk)] = chunk
        if len(chunks) != len(batch):
            raise RuntimeError("The chunker gave the same span of a document twice; chunk ids must be unique within a job.")
        rows = stored_rows(chunks, self.store.embed([c.text for c in chunks.values()], chunks=True))
        return rows.append_column("doc_key", batch["doc_key"]).append_column("doc_chunks", batch["doc_chunks"].cast(pa.int64()))
