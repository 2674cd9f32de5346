"""The data that flows through a pipeline: ``Document -> Chunk -> Context -> Answer``.

Every extractive piece keeps character offsets into its source document, and its text is always
``document.text[start:end]``: provenance survives every stage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Document:
    """A source text. ``id`` defaults to a hash of the text, so it is stable across runs."""

    text: str
    id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.text, str):
            raise TypeError(
                f"Document text must be a str, got {type(self.text).__name__}; "
                "decode bytes first, e.g. data.decode('utf-8', errors='replace')."
            )
        if not isinstance(self.id, str):
            raise TypeError(f"Document id must be a str, got {type(self.id).__name__}.")
        if not self.id:
            object.__setattr__(self, "id", hashlib.sha1(self.text.encode("utf-8", "surrogatepass")).hexdigest()[:12])


@dataclass(frozen=True)
class Chunk:
    """A span of a document: ``text == document.text[start:end]``.

    ``children`` holds sub-spans for tree-shaped chunkers (each child lies inside its parent).
    """

    doc_id: str
    start: int
    end: int
    text: str
    score: float | None = None
    token_count: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[Chunk, ...] = ()

    def __post_init__(self):
        if not 0 <= self.start <= self.end:
            raise ValueError(f"Chunk offsets must satisfy 0 <= start <= end, got {self.start}, {self.end}.")
        if len(self.text) != self.end - self.start:
            raise ValueError(
                f"Chunk text has {len(self.text)} characters but spans {self.end - self.start} "
                f"({self.start}:{self.end}); build chunks with Chunk.of(document, start, end)."
            )
        for child in self.children:
            if not (self.start <= child.start and child.end <= self.end and child.doc_id == self.doc_id):
                raise ValueError(f"Child span {child.start}:{child.end} lies outside its parent {self.start}:{self.end}.")

    @classmethod
    def of(cls, document: Document, start: int, end: int, **fields: Any) -> Chunk:
        """The span ``start:end`` of ``document``, with its text taken from the source."""
        if end > len(document.text):
            raise ValueError(f"Span {start}:{end} runs past the end of document {document.id!r} ({len(document.text)} chars).")
        return cls(doc_id=document.id, start=start, end=end, text=document.text[start:end], **fields)

    def with_score(self, score: float) -> Chunk:
        return replace(self, score=float(score))

    def to_dict(self) -> dict[str, Any]:
        data = {f: getattr(self, f) for f in ("doc_id", "start", "end", "text", "score", "token_count")}
        return data | {"metadata": dict(self.metadata), "children": [c.to_dict() for c in self.children]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        children = tuple(cls.from_dict(c) for c in data.get("children", ()))
        return cls(**{k: v for k, v in data.items() if k != "children"}, children=children)


@dataclass(frozen=True)
class Context:
    """What a compressor hands a generator: the query and either extractive ``pieces``
    (each a :class:`Chunk` with source offsets, in the order to show them) or soft ``embeddings``
    (a ``[n, hidden]`` tensor that replaces token embeddings), with token counts before and after."""

    query: str
    pieces: tuple[Chunk, ...] = ()
    embeddings: Any = None
    tokens_before: int = 0
    tokens_after: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "pieces", tuple(self.pieces))

    @property
    def ratio(self) -> float:
        """Compression ratio reached, ``tokens_before / tokens_after`` (1.0 when nothing was cut)."""
        return self.tokens_before / self.tokens_after if self.tokens_after else 1.0

    @property
    def tokens_saved(self) -> int:
        return self.tokens_before - self.tokens_after

    @property
    def text(self) -> str:
        return "\n\n".join(piece.text for piece in self.pieces)


@dataclass(frozen=True)
class Answer:
    """A generator's reply, with the context it was given (and so its sources)."""

    text: str
    context: Context
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[Chunk, ...]:
        return self.context.pieces


def check_provenance(pieces: Iterable[Chunk], documents: Mapping[str, Document] | Sequence[Document]) -> None:
    """Raise if any piece (or any of its children) is not the exact span of its source document."""
    by_id = documents if isinstance(documents, Mapping) else {d.id: d for d in documents}
    stack = list(pieces)
    while stack:
        piece = stack.pop()
        doc = by_id.get(piece.doc_id)
        if doc is None:
            raise ValueError(f"Piece refers to unknown document {piece.doc_id!r}.")
        if doc.text[piece.start : piece.end] != piece.text:
            raise ValueError(f"Piece {piece.start}:{piece.end} of {piece.doc_id!r} does not match its source text.")
        stack.extend(piece.children)
