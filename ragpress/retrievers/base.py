"""Retrievers (``query -> list[Chunk]``) and rerankers (``query, list[Chunk] -> list[Chunk]``).

A retriever is indexed once with :meth:`Retriever.index`, then answers queries; the base class
checks input and that the index exists, and saves/loads the chunks and settings (JSON) beside the
method's own index files. Returned chunks carry their retrieval ``score``, best first, and the
method's name in ``metadata["method"]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import ClassVar

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

    def run(self, query: str) -> list[Chunk]:
        return self.run_batch([query])[0]

    def run_batch(self, queries: list[str]) -> list[list[Chunk]]:
        """The ``top_k`` chunks for each query; methods that encode queries batch them here."""
        self._check_indexed()
        self.check_top_k()  # settings are plain attributes: checked again where they are used
        return [self.tag(found) for found in self.search_batch([check_query(q) for q in queries], self.top_k)]

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
        ranked = self.rerank(check_query(query), check_chunks(chunks))
        return self.tag(ranked[: self.top_k] if self.top_k is not None else ranked)

    def rerank(self, query: str, chunks: list[Chunk]) -> list[Chunk]:
        raise NotImplementedError


def _digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` but the manifest, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
