"""LanceDBRetriever: a persistent table that adds, deletes and filters in place, returning exact spans."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import pytest
import yaml

pytest.importorskip("lancedb")

from ragpress import Pipeline
from ragpress.core import Chunk, Document, check_provenance
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.retrievers.lancedb import LanceDBRetriever, where_sql

TEXTS = [
    "The with statement wraps a block with a context manager.",
    "A for loop may have an else clause that runs when the loop ends normally.",
    "The global statement declares names in the module namespace.",
    "Lambda expressions create anonymous functions.",
    "The raise statement raises an exception object.",
]
DOCS = [Document(f"Intro {i}. {t} Outro {i} \udcff.", id=f"d{i}", metadata={"lang": "en" if i % 2 else "fr"}) for i, t in enumerate(TEXTS)]


def chunks_of(docs: list[Document]) -> list[Chunk]:
    """Two chunks a document, the second starting mid-text, with user metadata; the first holds a sub-span."""
    out = []
    for doc in docs:
        cut = doc.text.index(" Outro")
        out += [Chunk.of(doc, 0, cut, token_count=cut // 4, metadata={"lang": doc.metadata["lang"], "part": 0}, children=(Chunk.of(doc, 6, 8),)),
                Chunk.of(doc, cut, len(doc.text), metadata={"lang": doc.metadata["lang"], "part": 1})]
    return out


@pytest.fixture()
def retriever(tiny_embedder_path, tmp_path):
    retriever = LanceDBRetriever(uri=str(tmp_path / "store"), model=tiny_embedder_path, top_k=3)
    retriever.index(chunks_of(DOCS))
    return retriever


def test_round_trip_returns_exact_spans_with_scores(retriever):
    assert sorted(retriever.chunks, key=lambda c: (c.doc_id, c.start)) == chunks_of(DOCS)  # metadata, token counts, children, \udcff kept
    for chunk in chunks_of(DOCS):
        hits = retriever.run(chunk.text)
        check_provenance(hits, DOCS)
        tagged = {**chunk.metadata, "method": "lancedb"}
        assert hits[0] == replace(chunk, score=hits[0].score, metadata=tagged) and hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True) and len(hits) == 3
        assert {h.metadata["method"] for h in hits} == {"lancedb"}


def test_adding_twice_adds_once_embeds_only_new_chunks_and_finds_them(retriever, monkeypatch):
    extra = Document("Decorators wrap a function in another function.", id="d9", metadata={"lang": "en"})
    new = [Chunk.of(extra, 0, len(extra.text), metadata={"lang": "en"})]
    embedded = []
    embed = retriever.embed
    monkeypatch.setattr(retriever, "embed", lambda texts, **kw: embedded.append(list(texts)) or embed(texts, **kw))
    for _ in range(2):
        retriever.add(chunks_of(DOCS) + new + new)
        assert len(retriever.chunks) == 2 * len(DOCS) + 1
    assert embedded == [[extra.text]]  # the rows already stored, and the repeat, were not embedded again
    assert retriever.run(extra.text)[0].doc_id == "d9"


def test_delete_removes_every_chunk_of_a_document(retriever):
    retriever.delete(["d1", "d3", "absent"])
    assert sorted({c.doc_id for c in retriever.chunks}) == ["d0", "d2", "d4"]
    assert all(h.doc_id not in {"d1", "d3"} for h in retriever.run(TEXTS[1]))
    with pytest.raises(TypeError, match="list of document ids"):
        retriever.delete("d0")


def test_where_filters_columns_and_metadata_before_ranking(retriever):
    assert {h.doc_id for h in retriever.run(TEXTS[0], where={"doc_id": ["d2", "d4"]})} == {"d2", "d4"}
    hits = retriever.run(TEXTS[0], where={"metadata": {"lang": "en", "part": 1}})
    assert len(hits) == 2 and {(h.doc_id, h.metadata["part"]) for h in hits} == {("d1", 1), ("d3", 1)}
    only = {"start": 0, "doc_id": "d0"}
    assert retriever.run_batch([TEXTS[0], TEXTS[2]], where=only) == [retriever.run(TEXTS[0], where=only), retriever.run(TEXTS[2], where=only)]
    assert [(h.doc_id, h.start) for h in retriever.run(TEXTS[2], where=only)] == [("d0", 0)]
    assert len(retriever.run(TEXTS[0], where={"start": 0})) == 3 and all(h.start == 0 for h in retriever.run(TEXTS[0], where={"start": 0}))


def test_filter_values_are_quoted_never_read_as_sql(retriever):
    hostile = "d0') OR doc_id IS NOT NULL OR ('"
    assert retriever.run(TEXTS[0], where={"doc_id": hostile}) == []
    assert retriever.run(TEXTS[0], where={"metadata": {"lang') OR TRUE OR ('": "en"}}) == []
    assert where_sql({"doc_id": ["a'b", "c"]}) == "(doc_id IN ('a''b', 'c'))"
    with pytest.raises(ValueError, match="may name"):
        where_sql({"text; DROP TABLE chunks": 1})
    with pytest.raises(ValueError, match="non-empty list"):
        where_sql({"doc_id": []})
    with pytest.raises(NotImplementedError, match="cannot filter"):
        bm25 = BM25Retriever()
        bm25.index(chunks_of(DOCS))
        bm25.run("with", where={"doc_id": "d0"})


def test_other_backends_say_they_cannot_add_or_delete():
    bm25 = BM25Retriever()
    bm25.index(chunks_of(DOCS))
    with pytest.raises(NotImplementedError, match="cannot add .* LanceDBRetriever"):
        bm25.add(chunks_of(DOCS))
    with pytest.raises(NotImplementedError, match="cannot delete"):
        bm25.delete(["d0"])


def test_a_new_process_serves_the_same_chunks(retriever, tiny_embedder_path):
    expected = [(h.doc_id, h.start, h.end, round(h.score, 4)) for h in retriever.run(TEXTS[3])]
    script = (f"from ragpress.retrievers.lancedb import LanceDBRetriever\n"
              f"r = LanceDBRetriever(uri={retriever.uri!r}, model={tiny_embedder_path!r}, top_k=3)\n"
              f"print([(h.doc_id, h.start, h.end, round(h.score, 4)) for h in r.run({TEXTS[3]!r})])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=".").stdout
    assert out.strip().splitlines()[-1] == repr(expected)
    assert LanceDBRetriever(uri=retriever.uri, model=tiny_embedder_path).indexed
    assert not LanceDBRetriever(uri=retriever.uri, table="other", model=tiny_embedder_path).indexed


def test_ann_index_is_built_above_the_threshold_and_recalls_exact(tiny_embedder_path, tmp_path):
    doc = Document(" ".join(f"w{i % 97}x{i % 13} token{i % 31}" for i in range(2000)), id="big")
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+ \S+", doc.text)]
    chunks = [Chunk.of(doc, s, e) for s, e in words[:600]]
    ann = LanceDBRetriever(uri=str(tmp_path / "s"), model=tiny_embedder_path, top_k=10, ann_threshold=500)
    ann.index(chunks[:400])
    assert ann.open_table().list_indices() == []  # below the threshold: exact
    ann.add(chunks[400:])
    assert [ix.index_type for ix in ann.open_table().list_indices()] == ["IvfPq"]
    exact = LanceDBRetriever(uri=ann.uri, model=tiny_embedder_path, top_k=10, vector_index="exact")
    queries = [chunks[i].text for i in range(0, 600, 20)]
    found = [{(h.start, h.end) for h in hits} for hits in ann.run_batch(queries)]
    truth = [{(h.start, h.end) for h in hits} for hits in exact.run_batch(queries)]
    recall = sum(len(f & t) for f, t in zip(found, truth)) / sum(map(len, truth))
    assert recall >= 0.9, recall
    check_provenance([h for hits in ann.run_batch(queries) for h in hits], [doc])


def test_a_pipeline_file_may_not_choose_the_store(tmp_path):
    stage = {"name": "lance", "after": [], "type": "ragpress.retrievers.lancedb.LanceDBRetriever", "settings": {"uri": str(tmp_path / "elsewhere")}}
    text = yaml.safe_dump({"stages": [stage]})
    with pytest.raises(ValueError, match=r"LanceDBRetriever.uri .* names a place .* allow=\{'uri'\}"):
        Pipeline.from_yaml(text)
    assert Pipeline.from_yaml(text, allow={"uri"}).nodes["lance"].stage.uri == str(tmp_path / "elsewhere")


def test_pipeline_cache_reuses_the_table_and_rebuilds_when_it_changed(tiny_embedder_path, tmp_path):
    from ragpress.chunkers.token_window import TokenWindowChunker

    retriever = LanceDBRetriever(uri=str(tmp_path / "store"), model=tiny_embedder_path, top_k=2)
    rag = Pipeline(chunker=TokenWindowChunker(size=8, overlap=0)).add("lance", retriever)
    docs = [Document(t, id=f"d{i}") for i, t in enumerate(TEXTS)]  # Pipeline's cache key cannot hash lone surrogates yet
    first = rag.index(docs, cache=tmp_path / "cache")
    assert rag.index(docs, cache=tmp_path / "cache") == first
    retriever.delete(["d0"])
    with pytest.warns(UserWarning, match="no longer holds"):
        rag.index(docs, cache=tmp_path / "cache")
    assert len(retriever.chunks) == len(first)


def test_exact_search_ranks_as_the_in_memory_dense_retriever(retriever, tiny_embedder_path):
    from ragpress.retrievers.dense import DenseRetriever

    dense = DenseRetriever(model=tiny_embedder_path, top_k=10, device="cpu")
    dense.index(chunks_of(DOCS))
    lance = LanceDBRetriever(uri=retriever.uri, model=tiny_embedder_path, top_k=10, vector_index="exact")
    for query in TEXTS + ["context managers and exceptions"]:
        ours, theirs = lance.run(query), dense.run(query)
        assert [(h.doc_id, h.start) for h in ours] == [(h.doc_id, h.start) for h in theirs]
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)


def test_chunks_longer_than_the_embedder_window_are_named_not_cut_silently(tiny_embedder_path, tmp_path):
    doc = Document("word " * 400, id="long")
    store = LanceDBRetriever(uri=str(tmp_path / "store"), model=tiny_embedder_path)
    with pytest.warns(UserWarning, match="128-token window"):
        store.index([Chunk.of(doc, 0, len(doc.text))])


def test_probes_follow_the_index_size_unless_set(tiny_embedder_path, tmp_path):
    class Table:  # what probes() reads of a LanceDB table: its vector index and how many rows it covers
        def __init__(self, rows):
            self.rows = rows

        def list_indices(self):
            return [SimpleNamespace(name="vector_idx", columns=["vector"])] if self.rows else []

        def index_stats(self, name):
            assert name == "vector_idx"
            return SimpleNamespace(num_indexed_rows=self.rows)

    auto = LanceDBRetriever(uri=str(tmp_path / "p"), model=tiny_embedder_path)
    # 10 % of LanceDB's sqrt(rows) partitions, at least 20: 100 probes at 1M rows (recall 0.99 there; 20 gave 0.8)
    assert [auto.probes(Table(n)) for n in (0, 100_000, 1_000_000, 100_000_000)] == [20, 32, 100, 1000]
    assert LanceDBRetriever(uri=auto.uri, model=tiny_embedder_path, nprobes=7).probes(Table(1_000_000)) == 7
