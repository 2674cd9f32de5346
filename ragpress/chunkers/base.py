"""Chunkers: ``list[Document] -> list[Chunk]``.

The base class validates input, runs the method's :meth:`Chunker.chunk` on each document with a
progress bar, checks that the chunks of a document cover all of its text (nothing dropped
silently) and that every chunk is an exact span of its source, and tags each chunk with the method.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from tqdm.auto import tqdm

from ragpress.core.stage import Stage, check_documents
from ragpress.core.types import Chunk, Document


@dataclasses.dataclass
class Chunker(Stage):
    kind: ClassVar[str] = "chunker"

    def run(self, documents: list[Document]) -> list[Chunk]:
        documents = check_documents(documents)
        chunks: list[Chunk] = []
        for doc in tqdm(documents, desc=type(self).__name__, disable=len(documents) < 20, leave=False):
            pieces = self.chunk(doc) if doc.text.strip() else []
            check_cover(doc, pieces)
            chunks.extend(pieces)
        return self.tag(chunks)

    def chunk(self, document: Document) -> list[Chunk]:
        """The chunks of one non-blank document, in source order."""
        raise NotImplementedError


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``start:end`` narrowed to exclude leading and trailing whitespace."""
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), start + len(piece.rstrip())


def check_cover(document: Document, chunks: list[Chunk]) -> None:
    """Raise unless every non-whitespace character of ``document`` lies in some chunk and every
    chunk is an exact span of it."""
    covered = bytearray(len(document.text) + 1)
    for chunk in chunks:
        if chunk.doc_id != document.id or document.text[chunk.start : chunk.end] != chunk.text:
            raise RuntimeError(f"Chunk {chunk.start}:{chunk.end} is not an exact span of document {document.id!r}.")
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    for i, char in enumerate(document.text):
        if not covered[i] and not char.isspace():
            raise RuntimeError(f"Chunking dropped text of document {document.id!r} at offset {i}: {document.text[i:i+40]!r}")
