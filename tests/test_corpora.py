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
