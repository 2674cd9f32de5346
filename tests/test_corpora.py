import ast
import sys

import pytest

from ragpress.corpora import essays_dir, gensim_test_data, stdlib_docstrings, wikipedia_pages


def test_essays_and_stdlib_docstrings_are_found():
    assert len(list(essays_dir().glob("*.txt"))) >= 40
    modules = dict(stdlib_docstrings())
    assert "Heap queue algorithm" in modules["heapq"][0]  # the module docstring comes first
    classes_only = dict(stdlib_docstrings(kinds=(ast.ClassDef,)))
    assert len(classes_only["heapq"]) < len(modules["heapq"])


def test_wikipedia_sample_or_a_clear_fix(monkeypatch):
    pytest.importorskip("gensim")
    title, text, markup = next(wikipedia_pages())
    assert title and len(markup) >= len(text) > 0
    monkeypatch.setitem(sys.modules, "gensim", None)  # as if gensim were not installed
    with pytest.raises(ImportError, match="pip install gensim"):
        gensim_test_data()


@pytest.mark.integration  # reads every offline text (about a minute with gensim's Wikipedia sample)
def test_one_schema_one_held_out_rule_one_file_format(tmp_path):
    from ragpress import corpora

    docs = corpora.documents()
    assert docs and all(set(d) == {"id", "source", "title", "text", "split"} for d in docs)
    assert all(d["id"] == f"{d['source']}/{d['title']}" and d["split"] == corpora.split_of(d["id"]) for d in docs)
    assert all(len(d["text"]) >= corpora.MIN_CHARS and d["text"] == d["text"].strip() for d in docs)
    held = sum(d["split"] == "heldout" for d in docs) / len(docs)
    assert 0.04 < held < 0.2  # one in ten, by hash
    assert corpora.split_of("paul_graham/addiction") == corpora.split_of("paul_graham/addiction")  # stable, not positional
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        assert corpora.load(corpora.save(docs, tmp_path / name)) == docs
    assert (tmp_path / "corpus.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"  # gzipped by its name
