"""The documents of a corpus on disk, read one file at a time so a corpus larger than memory
streams: JSON lines (``.jsonl``, ``.json``, ``.ndjson``, each optionally ``.gz``; one
``{"text", "id"?, ...}`` object a line, the format of :mod:`ragpress.corpora`), Parquet (a row a
document, the same columns) and any other file as one plain-text document whose id is its path.

A line that is not UTF-8 or not JSON, or a row without a ``text`` string, becomes a
:class:`Problem` naming the file and line instead of a document; the caller decides whether it
skips it or fails the job. Other keys of a row become the document's metadata."""

from __future__ import annotations

import dataclasses
import glob
import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragpress.core.types import Document

JSON_LINES = (".jsonl", ".json", ".ndjson")


@dataclasses.dataclass(frozen=True)
class Problem:
    """Bad input: ``path`` and 1-based ``line`` (row, for Parquet) with what is wrong there."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def expand(patterns: Sequence[str]) -> list[str]:
    """The files that ``patterns`` (paths or globs, ``**`` included) name, sorted, each once."""
    if isinstance(patterns, str) or not patterns:
        raise ValueError(f"inputs must be a non-empty list of paths or glob patterns, got {patterns!r}.")
    files: dict[str, None] = {}
    for pattern in patterns:
        found = sorted(p for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not found:
            raise ValueError(f"No file matches {pattern!r}: check the path (quote globs so the shell leaves them to ragpress).")
        files.update(dict.fromkeys(found))
    return list(files)


def read_file(path: str) -> Iterator[Document | Problem]:
    """Each document of the file at ``path``, or a :class:`Problem` where one cannot be read."""
    name = path.removesuffix(".gz")
    if name.endswith(JSON_LINES):
        return json_lines(path)
    if name.endswith(".parquet"):
        return parquet_rows(path)
    return text_file(path)


def json_lines(path: str) -> Iterator[Document | Problem]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                yield Problem(path, number, f"not UTF-8 (byte {error.start} of the line is {raw[error.start:error.start + 1]!r})")
            except json.JSONDecodeError as error:
                yield Problem(path, number, f"not JSON ({error.msg} at column {error.colno})")
            else:
                yield row_document(row, path, number)


def parquet_rows(path: str) -> Iterator[Document | Problem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1024)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield row_document(row, path, number)
    except (pa.ArrowException, OSError) as error:
        yield Problem(path, 0, f"not a readable Parquet file ({error})")


def text_file(path: str) -> Iterator[Document | Problem]:
    data = Path(path).read_bytes()
    try:
        yield Document(data.decode("utf-8"), id=path)
    except UnicodeDecodeError as error:
        yield Problem(path, data.count(b"\n", 0, error.start) + 1, f"not UTF-8 (byte {error.start} of the file)")


def row_document(row: Any, path: str, number: int) -> Document | Problem:
    """A row as a document: ``text`` (a str), ``id`` (a str; by default a hash of the text), the
    other keys as metadata."""
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        return Problem(path, number, f"row without text: each row needs a 'text' string, got {str(row)[:80]!r}")
    if not isinstance(row.get("id") or "", str):
        return Problem(path, number, f"'id' must be a string, got {row['id']!r}")
    metadata = {key: value for key, value in row.items() if key not in ("text", "id")}
    return Document(row["text"], id=row.get("id") or "", metadata=json.loads(json.dumps(metadata, default=str)))


def document_key(document: Document, settings: str) -> str:
    """What a stored document is known by: its id, text and metadata, and the ``settings`` digest
    of the stages that made its chunks; any change to one of them processes the document again."""
    data = json.dumps([document.id, document.text, document.metadata, settings], sort_keys=True)  # ASCII: lone surrogates escaped
    return hashlib.sha256(data.encode()).hexdigest()[:32]
