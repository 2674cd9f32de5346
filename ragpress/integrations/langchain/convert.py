"""Conversions between ragpress data and LangChain ``Document`` objects (layout in the package docstring)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.documents import Document as LCDocument

from ragpress.core.types import Chunk, Document
from ragpress.integrations._common import (
    PREFIX,
    SPAN_KEYS,
    locate,
    own_metadata,
    read_metadata,
    span_id,
    trace_back,
    user_metadata,
)

START = "start_index"  # LangChain's key for where a split's text starts in its source (add_start_index=True)
_SPAN_ONLY = (*SPAN_KEYS, PREFIX + "children", PREFIX + "token_count")  # what describes a span, not where it came from


def chunk_to_document(chunk: Chunk, metadata: Mapping[str, Any] | None = None, start_index: bool = False) -> LCDocument:
    """A LangChain ``Document`` for ``chunk``: ``metadata`` (the user's, e.g. its source document's),
    with ``start_index`` set when asked (the chunk's offset in its source, added to the source's own
    ``start_index`` if it has one, so it points into the same text), and ragpress's own keys with the
    span; its ``id`` is ``"{doc_id}:{start}-{end}"``."""
    user = dict(metadata or {})
    if start_index:
        user[START] = (user[START] if _is_offset(user.get(START)) else 0) + chunk.start
    return LCDocument(page_content=chunk.text, metadata=user | own_metadata(chunk, user, span=True), id=span_id(chunk))


def document_to_chunk(document: LCDocument) -> Chunk:
    """The ragpress chunk for a LangChain ``Document``: its span from ragpress's keys; else, for a
    split from LangChain's own splitters (``start_index``, no ragpress keys), the span at
    ``start_index`` of the document its ``source`` metadata names (a hash of its other metadata when
    it has no ``source``); else a whole document of its own, named by its ``id`` or a hash of its text."""
    if not isinstance(document, LCDocument):
        raise TypeError(f"Expected a LangChain Document, got {type(document).__name__}.")
    (doc_id, start, end), fields, metadata = read_metadata(document.metadata or {})
    if doc_id is None and _is_offset(metadata.get(START)):
        doc_id, start = source_name(metadata), metadata[START]
    text = document.page_content
    own_id = document.id or (Document(text).id if isinstance(text, str) else "")
    what = f"LangChain Document {document.id!r}" if document.id else "A LangChain Document"
    doc_id, start, end = locate(text, doc_id, start, end, own_id, what)
    return Chunk(doc_id=doc_id, start=start, end=end, text=text, metadata=metadata, **fields)


def source_name(metadata: Mapping[str, Any]) -> str:
    """The document a split of LangChain's splitters comes from: its ``source`` metadata, else a
    stable hash of its metadata other than ``start_index`` (splits of one source share it)."""
    if metadata.get("source") is not None:
        return str(metadata["source"])
    rest = json.dumps({k: v for k, v in metadata.items() if k != START}, sort_keys=True, default=str)
    return "source-" + hashlib.sha1(rest.encode()).hexdigest()[:12]


def pieces_to_documents(pieces: Sequence[Chunk], originals: Sequence[LCDocument], chunks: Sequence[Chunk]) -> list[LCDocument]:
    """Documents for the pieces a stage returned from ``chunks`` (the chunks of ``originals``): the
    original where the span is unchanged, with ragpress's keys updated (score, method...); else a new
    document cut from the original it lies in (:func:`cut_document`); else a document of its own."""
    out = []
    for piece, index in zip(pieces, trace_back(chunks, pieces)):
        if index is None:
            out.append(chunk_to_document(piece))
        elif (chunks[index].doc_id, chunks[index].start, chunks[index].end) == (piece.doc_id, piece.start, piece.end):
            original = originals[index]
            out.append(original.model_copy(update={"metadata": original.metadata | own_metadata(piece, user_metadata(original.metadata))}))
        else:
            out.append(cut_document(piece, originals[index], chunks[index]))
    return out


def cut_document(piece: Chunk, original: LCDocument, chunk: Chunk) -> LCDocument:
    """A document for ``piece``, cut from ``original`` (whose chunk is ``chunk``): the original's
    metadata untouched but ``start_index``, moved by the piece's offset inside the original so that it
    still points into the same source; ragpress's keys of the original that are not about its span
    (a retrieval score, say) unless the piece has its own; and the piece's span."""
    user = user_metadata(original.metadata)
    own = own_metadata(piece, user, span=True)
    inherited = {k: v for k, v in original.metadata.items() if k.startswith(PREFIX) and k not in _SPAN_ONLY}
    if _is_offset(user.get(START)):
        user[START] += piece.start - chunk.start
    return LCDocument(page_content=piece.text, metadata=inherited | user | own, id=span_id(piece))


def _is_offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def to_langchain(documents: Sequence[Document]) -> list[LCDocument]:
    """ragpress ``Document`` objects as LangChain ones (text, ``id`` and metadata kept)."""
    return [LCDocument(page_content=d.text, id=d.id, metadata=dict(d.metadata)) for d in documents]


def from_langchain(documents: Sequence[LCDocument]) -> list[Document]:
    """LangChain ``Document`` objects as ragpress ones (text, ``id`` and metadata kept; a document
    without an ``id`` gets ragpress's, a hash of its text)."""
    return [Document(d.page_content, id=d.id or "", metadata=dict(d.metadata)) for d in documents]
