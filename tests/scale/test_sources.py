"""ragpress.scale.sources: every input format gives documents, and every bad line a Problem naming
its file and line, without Ray."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ragpress.core import Document
from ragpress.scale.sources import Problem, document_key, expand, read_file


def test_parquet_rows_are_documents_with_metadata_and_a_row_without_text_is_named(tmp_path):
    path = str(tmp_path / "docs.parquet")
    pq.write_table(pa.table({"id": ["a", None, "c"], "text": ["First.", "Second.", None], "lang": ["en", "fr", "de"]}), path)
    first, second, third = read_file(path)
    assert first == Document("First.", id="a", metadata={"lang": "en"})
    assert second == Document("Second.", metadata={"lang": "fr"})  # no id: the text's hash
    assert third == Problem(path, 3, "row without text: each row needs a 'text' string, got \"{'id': 'c', 'text': None, 'lang': 'de'}\"")
    (tmp_path / "bad.parquet").write_text("not parquet")
    [problem] = read_file(str(tmp_path / "bad.parquet"))
    assert problem.line == 0 and problem.reason.startswith("not a readable Parquet file")


def test_a_text_file_is_one_document_named_by_its_path_and_bad_bytes_are_named_by_line(tmp_path):
    (tmp_path / "good.md").write_text("# Title\n\nBody, caf\u00e9.\n")
    assert list(read_file(str(tmp_path / "good.md"))) == [Document("# Title\n\nBody, caf\u00e9.\n", id=str(tmp_path / "good.md"))]
    (tmp_path / "bad.txt").write_bytes(b"one\ntwo\nthree \xff\n")
    assert list(read_file(str(tmp_path / "bad.txt"))) == [Problem(str(tmp_path / "bad.txt"), 3, "not UTF-8 (byte 14 of the file)")]


def test_gzipped_json_lines_are_read_and_ids_must_be_strings(tmp_path):
    path = str(tmp_path / "docs.jsonl.gz")
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"id": "x", "text": "Lone \udcff kept."}) + "\n" + json.dumps({"id": 7, "text": "Numbered."}) + "\n")
    doc, problem = read_file(path)
    assert doc == Document("Lone \udcff kept.", id="x")
    assert problem == Problem(path, 2, "'id' must be a string, got 7")


def test_expand_finds_each_file_once_and_names_a_pattern_that_matches_nothing(tmp_path):
    for name in ("b.jsonl", "a.jsonl", "sub/c.jsonl"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    found = expand([str(tmp_path / "*.jsonl"), str(tmp_path / "a.jsonl"), str(tmp_path / "**/*.jsonl")])
    assert found == [str(tmp_path / n) for n in ("a.jsonl", "b.jsonl", "sub/c.jsonl")]
    with pytest.raises(ValueError, match=r"No file matches .*nowhere"):
        expand([str(tmp_path / "nowhere/*.jsonl")])
    with pytest.raises(ValueError, match="non-empty list"):
        expand(str(tmp_path / "a.jsonl"))


def test_a_document_key_changes_with_its_text_metadata_or_settings_only():
    doc = Document("Text.", id="d", metadata={"lang": "en"})
    key = document_key(doc, "settings")
    assert document_key(Document("Text.", id="d", metadata={"lang": "en"}), "settings") == key
    changed = [Document("Text!", id="d", metadata={"lang": "en"}), Document("Text.", id="e", metadata={"lang": "en"}),
               Document("Text.", id="d", metadata={"lang": "fr"})]
    assert len({key, document_key(doc, "other settings"), *(document_key(d, "settings") for d in changed)}) == 5
