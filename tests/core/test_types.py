from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragpress.core import Chunk, Context, Document, check_provenance


def test_document_rejects_non_string_text_with_fix():
    with pytest.raises(TypeError, match="decode bytes first"):
        Document(b"bytes")


def test_document_id_is_stable_hash():
    assert Document("same text").id == Document("same text").id != Document("other").id


def test_chunk_text_must_match_span_length():
    with pytest.raises(ValueError, match="Chunk.of"):
        Chunk(doc_id="d", start=0, end=3, text="ab")


def test_children_must_lie_inside_parent():
    doc = Document("abcdef", id="d")
    with pytest.raises(ValueError, match="outside"):
        Chunk.of(doc, 0, 3, children=(Chunk.of(doc, 2, 5),))


def test_context_ratio():
    ctx = Context(query="q", tokens_before=100, tokens_after=25)
    assert ctx.ratio == 4.0 and ctx.tokens_saved == 75


def test_provenance_detects_a_forged_piece():
    doc = Document("hello world", id="d")
    with pytest.raises(ValueError, match="does not match"):
        check_provenance([Chunk(doc_id="d", start=0, end=5, text="HELLO")], [doc])


@given(st.text(min_size=1), st.data())
def test_chunk_of_is_exact_span_of_random_text(text, data):
    doc = Document(text)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    chunk = Chunk.of(doc, start, end)
    assert doc.text[chunk.start : chunk.end] == chunk.text
    check_provenance([chunk], [doc])


_REAL = Path(__import__("pydoc_data").__file__).parent.joinpath("topics.py").read_text()


@given(st.integers(0, len(_REAL)), st.integers(0, 5000))
def test_chunk_of_is_exact_span_of_real_text(start, length):
    doc = Document(_REAL)
    chunk = Chunk.of(doc, start, min(len(_REAL), start + length))
    check_provenance([chunk], {doc.id: doc})


def test_document_with_undecodable_bytes_gets_an_id():
    text = b"caf\xe9 au lait".decode("utf-8", "surrogateescape")
    assert Document(text).id == Document(text).id != Document("cafe au lait").id
