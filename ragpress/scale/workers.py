"""The work a Ray Data job spreads over its workers before embedding: reading files into
documents and chunking them (embedding: :mod:`ragpress.scale.embed`). Each step takes and gives a
batch of plain columns; documents and chunks travel as JSON text (ASCII, so lone surrogates
survive Arrow's UTF-8 strings). The chunker runs in an actor class, built once when the actor
starts and kept for every batch it is given; this module imports no embedder, so those actors
start quickly."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from ragpress.chunkers.base import Chunker
from ragpress.core.types import Chunk, Document
from ragpress.scale.sources import Problem, document_key, read_file


class BadInputError(ValueError):
    """A file holds a line that is not a document, and the job was told to fail on bad input."""


def read_documents(batch: dict[str, np.ndarray], settings: str, known: frozenset[str], fail: bool, tally: Any,
                   batch_size: int) -> Iterator[dict[str, list]]:
    """The documents of each file in ``batch["path"]``, ``batch_size`` at a time, leaving out those
    whose :func:`document_key` is ``known`` (stored by an earlier run). Bad lines raise
    :class:`BadInputError` when ``fail``, else go to ``tally`` (a :class:`Tally` actor) and are skipped."""
    out, skipped, problems = _empty(), 0, []
    for path in batch["path"]:
        for item in read_file(str(path)):
            if isinstance(item, Problem):
                if fail:
                    raise BadInputError(f"{item} (on_bad_input='skip', or --on-bad-input skip on the command line, leaves such lines out)")
                problems.append(str(item))
                continue
            key = document_key(item, settings)
            if key in known:
                skipped += 1
                continue
            out["doc_id"].append(item.id)
            out["key"].append(key)
            out["document"].append(json.dumps({"text": item.text, "id": item.id, "metadata": dict(item.metadata)}))
            if len(out["key"]) >= batch_size:
                yield out
                out = _empty()
    tally.add.remote(skipped, problems)
    if out["key"]:
        yield out


def _empty() -> dict[str, list]:
    return {"doc_id": [], "key": [], "document": []}


class ChunkWorker:
    """Chunks a batch of documents with ``chunker``; each chunk carries the document's metadata
    (the chunk's own keys win), its document's key and how many chunks that document has."""

    def __init__(self, chunker: Chunker):
        self.chunker = chunker

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        documents = [Document(**json.loads(text)) for text in batch["document"]]
        keys = {doc.id: key for doc, key in zip(documents, batch["key"])}
        chunks = self.chunker.run(documents)
        counts = Counter(c.doc_id for c in chunks)
        metadata = {doc.id: doc.metadata for doc in documents}
        chunks = [Chunk.from_dict(c.to_dict() | {"metadata": {**metadata[c.doc_id], **c.metadata}}) for c in chunks]
        return {"chunk": [json.dumps(c.to_dict()) for c in chunks], "doc_key": [str(keys[c.doc_id]) for c in chunks],
                "doc_chunks": [counts[c.doc_id] for c in chunks]}


class Tally:
    """Counts, across all readers, the documents skipped as already stored and the bad lines."""

    def __init__(self):
        self.skipped, self.problems = 0, []

    def add(self, skipped: int, problems: list[str]) -> None:
        self.skipped += skipped
        self.problems += problems

    def totals(self) -> tuple[int, list[str]]:
        return self.skipped, sorted(set(self.problems))
