"""Retrievers (``query -> list[Chunk]``) and rerankers (``query, list[Chunk] -> list[Chunk]``).

A retriever is indexed with :meth:`Retriever.index`, then answers queries; the base class
checks input and that the index exists, and saves/loads the chunks and settings (JSON) beside the
method's own index files. Backends that can change an index in place (a database table) also take
:meth:`Retriever.add` (upsert), :meth:`Retriever.delete` (by document) and a metadata ``where``
filter on queries; the others say so when asked. Returned chunks carry their retrieval ``score``, best first, and the
method's name in ``metadata["method"]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ragpress.core.settings import read_json
from ragpress.core.stage import Stage, check_chunks, check_query
from ragpress.core.types import Chunk

MANIFEST = "manifest.json"


@dataclasses.dataclass
class Retriever(Stage):
    kind: ClassVar[str] = "retriever"
    top_k: int = 5

    def __post_init__(self):
        self.check_top_k()

    def check_top_k(self) -> None:
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 1:
            raise ValueError(f"top_k (chunks returned per query) must be a positive int, got {self.top_k!r}.")

    @property
    def indexed(self) -> bool:
        return hasattr(self, "_chunks")

    @property
    def chunks(self) -> list[Chunk]:
        self._check_indexed()
        return self._chunks

    def index(self, chunks: list[Chunk]) -> None:
        """Build the index over ``chunks`` (replacing any earlier one)."""
        chunks = check_chunks(chunks, allow_empty=False)
        self.build(chunks)
        self._chunks = chunks

    def add(self, chunks: list[Chunk]) -> None:
        """Add ``chunks`` to the index, each once: a chunk already there (same document, offsets and
        text) is not added again, so a retried or repeated add changes nothing."""
        self._check_indexed()
        self.upsert(check_chunks(chunks))

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove every chunk of the documents ``doc_ids`` from the index."""
        if isinstance(doc_ids, str) or not all(isinstance(d, str) for d in doc_ids):
            raise TypeError(f"delete takes a list of document ids (str), got {doc_ids!r}; wrap one id as [doc_id].")
        self._check_indexed()
        self.remove(list(doc_ids))

    def run(self, query: str, *, where: Mapping[str, Any] | None = None) -> list[Chunk]:
        return self.run_batch([query], where=where)[0]

    def run_batch(self, queries: list[str], *, where: Mapping[str, Any] | None = None) -> list[list[Chunk]]:
        """The ``top_k`` chunks for each query (among those that match ``where``, for backends that
        filter); methods that encode queries batch them here."""
        self._check_indexed()
        self.check_top_k()  # settings are plain attributes: checked again where they are used
        queries = [check_query(q) for q in queries]
        found = self.search_batch(queries, self.top_k) if where is None else self.search_where(queries, self.top_k, where)
        return [self.tag(chunks) for chunks in found]

    def save(self, path: str | Path) -> None:
        """Write the settings, the chunks (JSON lines) and the method's index to folder ``path``, with a
        manifest of every file's SHA-256, so an edited or reordered file is refused on restore."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "stage.json").write_text(json.dumps(self.to_dict()))
        (path / "chunks.jsonl").write_text("".join(json.dumps(c.to_dict()) + "\n" for c in self.chunks))
        self.save_index(path)
        (path / MANIFEST).write_text(json.dumps(_digests(path), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> Retriever:
        """A retriever rebuilt from a folder written by :meth:`save`."""
        retriever = Stage.from_dict(read_json(Path(path) / "stage.json"))
        if not isinstance(retriever, cls):
            raise ValueError(f"{path} holds a {type(retriever).__name__}, not a {cls.__name__}.")
        retriever.restore(path)
        return retriever

    def restore(self, path: str | Path) -> None:
        """Load into this retriever an index that :meth:`save` wrote with the same settings."""
        path = Path(path)
        manifest = path / MANIFEST
        if not manifest.exists():
            raise ValueError(f"{path} has no {MANIFEST}: it was not written by Retriever.save (or is from before it kept one); rebuild the index.")
        if read_json(manifest) != _digests(path):
            raise ValueError(f"The files in {path} differ from what Retriever.save wrote ({MANIFEST}): rebuild the index rather than serve edited text.")
        saved = read_json(path / "stage.json")
        if saved != json.loads(json.dumps(self.to_dict())):
            raise ValueError(f"{path} was saved with other settings: {saved}; this retriever has {self.to_dict()}.")
        chunks = [Chunk.from_dict(json.loads(line)) for line in (path / "chunks.jsonl").read_text().splitlines()]
        self.load_index(path, chunks)
        self._chunks = chunks

    def _check_indexed(self) -> None:
        if not self.indexed:
            raise RuntimeError(f"{type(self).__name__} has no index yet: call .index(chunks) or Pipeline.index(documents) first.")

    def build(self, chunks: list[Chunk]) -> None:
        raise NotImplementedError

    def search(self, query: str, top_k: int) -> list[Chunk]:
        raise NotImplementedError

    def search_batch(self, queries: list[str], top_k: int) -> list[list[Chunk]]:
        return [self.search(query, top_k) for query in queries]

    def search_where(self, queries: list[str], top_k: int, where: Mapping[str, Any]) -> list[list[Chunk]]:
        raise NotImplementedError(
            f"{type(self).__name__} cannot filter by metadata (where=...): drop the filter and filter the chunks it "
            "returns, or use LanceDBRetriever, whose table filters before ranking."
        )

    def upsert(self, chunks: list[Chunk]) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} cannot add to an index in place: call .index(chunks) with every chunk to rebuild "
            "it, or use LanceDBRetriever, which adds and deletes in place."
        )

    def remove(self, doc_ids: list[str]) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} cannot delete from an index in place: call .index(chunks) with the chunks to keep, "
            "or use LanceDBRetriever, which adds and deletes in place."
        )

    def save_index(self, path: Path) -> None:
        raise NotImplementedError

    def load_index(self, path: Path, chunks: list[Chunk]) -> None:
        raise NotImplementedError


@dataclasses.dataclass
class Reranker(Stage):
    """Reorders (and may cut) retrieved chunks for a query; ``top_k`` keeps the best (all if None)."""

    kind: ClassVar[str] = "reranker"
    top_k: int | None = None

    def run(self, query: str, chunks: list[Chunk]) -> list[Chunk]:
        return self.run_batch([query], [chunks])[0]

    def run_batch(self, queries: list[str], chunks: list[list[Chunk]]) -> list[list[Chunk]]:
        """The reranked chunks of every ``(query, chunks)`` pair, through :meth:`rerank_batch` in one call."""
        pairs = list(zip(queries, chunks, strict=True))
        ranked = self.rerank_batch([check_query(q) for q, _ in pairs], [check_chunks(c) for _, c in pairs])
        return [self.tag(r[: self.top_k] if self.top_k is not None else r) for r in ranked]

    def rerank(self, query: str, chunks: list[Chunk]) -> list[Chunk]:
        raise NotImplementedError

    def rerank_batch(self, queries: list[str], chunks: list[list[Chunk]]) -> list[list[Chunk]]:
        """:meth:`rerank` over many queries; methods that can pack their model calls across queries
        override it (with results equal to :meth:`rerank`)."""
        return [self.rerank(q, c) for q, c in zip(queries, chunks)]


def _digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` but the manifest, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
