"""The documents a served pipeline answers from: a JSON lines file in the corpus format of
:mod:`ragpress.corpora` (gzipped when its name ends in ``.gz``), one object a line with a ``text``,
an optional ``id`` (by default a hash of the text) and any other keys kept as metadata."""

from __future__ import annotations

from pathlib import Path

from ragpress.core.types import Document
from ragpress.corpora import load


def read_documents(path: str | Path) -> list[Document]:
    documents = []
    for i, row in enumerate(load(path), 1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError(f"{path}, document {i}: each line must be a JSON object with a 'text' string, got {str(row)[:80]!r}.")
        if not isinstance(row.get("id", ""), str):
            raise ValueError(f"{path}, document {i}: 'id' must be a string, got {row['id']!r}.")
        metadata = {k: v for k, v in row.items() if k not in ("text", "id")}
        documents.append(Document(row["text"], id=row.get("id", ""), metadata=metadata))
    return documents
