import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragpress.chunkers.base import check_cover
from ragpress.chunkers.sentence import SentenceChunker, rule_sentences, split_paragraphs, split_sentences
from ragpress.chunkers.token_window import TokenWindowChunker
from ragpress.core import Document, check_provenance
from ragpress.demo import python_reference
from ragpress.models import load_tokenizer

_texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts, st.integers(1, 40), st.sampled_from(["sentence", "paragraph"]))
def test_sentence_chunks_cover_random_text_exactly(text, max_tokens, unit):
    doc = Document(text)
    chunks = SentenceChunker(unit=unit, max_tokens=max_tokens).run([doc])
    check_cover(doc, chunks)
    check_provenance(chunks, [doc])
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


@settings(max_examples=40, deadline=None)
@given(_texts, st.integers(1, 30), st.data())
def test_token_windows_cover_random_text_exactly(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    doc = Document(text)
    chunks = TokenWindowChunker(size=size, overlap=overlap).run([doc])
    check_cover(doc, chunks)
    check_provenance(chunks, [doc])
    assert all(c.token_count <= size for c in chunks)


def test_sentence_chunks_respect_the_token_limit_on_real_text():
    docs = python_reference()[:12]
    chunks = SentenceChunker(unit="paragraph", max_tokens=64).run(docs)
    tokenizer = load_tokenizer("minilm-l6")
    for chunk in chunks:
        assert chunk.token_count == len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"])
        if len([line for line in chunk.text.splitlines() if line.strip()]) > 1:
            assert chunk.token_count <= 64  # only a single unsplittable line may exceed the limit
    check_provenance(chunks, docs)
    assert len({c.doc_id for c in chunks}) == 12


def test_paragraph_and_sentence_splitting():
    text = "First one. Second one.\n\n  Next paragraph here.  \n \n\nLast."
    assert [text[s:e] for s, e in split_paragraphs(text)] == ["First one. Second one.", "Next paragraph here.", "Last."]
    assert [text[s:e] for s, e in split_sentences(text)][:2] == ["First one.", "Second one."]


def test_blank_document_gives_no_chunks_and_bad_input_is_named():
    assert SentenceChunker().run([Document("   \n\n ")]) == []
    with pytest.raises(ValueError, match="corpus is empty"):
        SentenceChunker().run([])
    with pytest.raises(TypeError, match="Document"):
        SentenceChunker().run(["plain string"])
    with pytest.raises(TypeError, match=r"\[Document\(text\)\]"):
        SentenceChunker().run("plain string")
    with pytest.raises(ValueError, match="overlap"):
        TokenWindowChunker(size=4, overlap=4)


def test_rule_sentences_handle_abbreviations_initials_and_blocks():
    text = "Dr. Smith met J. R. Doe at 5 p.m. today. He left, e.g. early!  Then:\n\n* a list item\n* another one\nIt ends.Next one here."
    assert [text[a:b] for a, b in rule_sentences(text)] == [
        "Dr. Smith met J. R. Doe at 5 p.m. today.", "He left, e.g. early!", "Then:", "* a list item", "* another one\nIt ends.", "Next one here."]


@settings(max_examples=40, deadline=None)
@given(_texts)
def test_rule_sentences_cover_random_text(text):
    spans = rule_sentences(text)
    assert all(a < b <= c for (a, b), (c, _) in zip(spans, spans[1:])) and all(text[a:b] == text[a:b].strip() for a, b in spans)
    covered = set().union(*(range(a, b) for a, b in spans)) if spans else set()
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_sentence_chunker_splitter_choice(monkeypatch):
    text = "One sentence here. Another one follows.\n\nA third."
    calls = []
    monkeypatch.setattr("ragpress.chunkers.sentence.split_sentences", lambda t, spacy_model: calls.append(t) or rule_sentences(t))
    rules = SentenceChunker(unit="sentence", max_tokens=5).run([Document(text)])
    assert [c.text for c in rules] == ["One sentence here.", "Another one follows.", "A third."] and not calls
    SentenceChunker(unit="sentence", max_tokens=5, splitter="spacy").run([Document(text)])
    assert calls == [text]
    with pytest.raises(ValueError, match="splitter"):
        SentenceChunker(splitter="nltk")


def test_token_windows_encode_each_document_once(monkeypatch):
    tokenizer, calls = load_tokenizer("minilm-l6"), []
    monkeypatch.setattr(type(tokenizer), "__call__", lambda self, *a, _call=type(tokenizer).__call__, **k: calls.append(1) or _call(self, *a, **k))
    docs = python_reference()[:3]
    chunks = TokenWindowChunker(size=64, overlap=8).run(docs)
    assert len(chunks) > 10 and len(calls) == 3  # offsets from one encode per document, no window re-encoded
