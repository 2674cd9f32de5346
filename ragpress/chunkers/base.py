"""Chunkers: ``list[Document] -> list[Chunk]``.

The base class validates input, runs the method's :meth:`Chunker.chunk` on each document with a
progress bar (or its :meth:`Chunker.chunk_batch` on all documents at once, for methods that batch
model calls across documents), checks that the chunks of a document cover all of its text (nothing
dropped silently) and that every chunk is an exact span of its source, and tags each chunk with the
method.
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
        return self.run_batch([documents])[0]

    def run_batch(self, corpora: list[list[Document]]) -> list[list[Chunk]]:
        """The chunks of each list of documents, every non-blank document of every list chunked in
        one :meth:`chunk_batch` call (so methods that call a model batch across documents)."""
        corpora = [check_documents(documents) for documents in corpora]
        todo = [doc for documents in corpora for doc in documents if doc.text.strip()]
        chunked = iter(self.chunk_batch(todo))
        out = []
        for documents in corpora:
            chunks: list[Chunk] = []
            for doc in documents:
                pieces = next(chunked) if doc.text.strip() else []
                check_cover(doc, pieces)
                chunks.extend(pieces)
            out.append(self.tag(chunks))
        return out

    def chunk(self, document: Document) -> list[Chunk]:
        """The chunks of one non-blank document, in source order."""
        raise NotImplementedError

    def chunk_batch(self, documents: list[Document]) -> list[list[Chunk]]:
        """:meth:`chunk` of each non-blank document; methods that can batch their model calls
        across documents override it (with results equal to :meth:`chunk`)."""
        return [self.chunk(doc) for doc in tqdm(documents, desc=type(self).__name__, disable=len(documents) < 20, leave=False)]


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


def token_counts(tokenizer, texts: list[str]) -> list[int]:
    """The exact token count of each of ``texts`` (no special tokens), from one batched call."""
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]


def token_spans(text: str, start: int, end: int, tokenizer, max_tokens: int) -> list[tuple[tuple[int, int], int]]:
    """``text[start:end]`` cut at token boundaries into consecutive pieces of at most ``max_tokens``
    tokens, as ``((start, end), tokens)`` with whitespace at the ends excluded and exact counts; the
    pieces cover the span (characters a tokenizer skips stay inside a piece)."""
    offsets = tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
    out, first, cursor = [], 0, start
    while first < len(offsets):
        take = min(max_tokens, len(offsets) - first)
        while True:  # a piece tokenised on its own can differ by a token at its edges
            cut = end if first + take == len(offsets) else start + offsets[first + take - 1][1]
            a, b = strip_span(text, cursor, cut)
            count = len(tokenizer(text[a:b], add_special_tokens=False, verbose=False)["input_ids"])
            if count <= max_tokens or take == 1:
                break
            take -= 1
        if a < b:
            out.append(((a, b), count))
        first, cursor = first + take, cut
    return out
