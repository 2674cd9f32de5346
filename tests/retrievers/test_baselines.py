import pytest
import torch

from ragpress.core import Chunk, Document
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.retrievers.dense import DenseRetriever
from ragpress.retrievers.fusion import ReciprocalRankFusion

TEXTS = [
    "The with statement wraps a block with a context manager.",
    "A for loop may have an else clause that runs when the loop ends normally.",
    "The global statement declares names in the module namespace.",
    "Lambda expressions create anonymous functions.",
    "The raise statement raises an exception object.",
]


@pytest.fixture()
def chunks():
    docs = [Document(t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    return [Chunk.of(d, 0, len(d.text)) for d in docs]


def test_dense_finds_each_chunk_by_its_own_text(tiny_embedder_path, chunks):
    retriever = DenseRetriever(model=tiny_embedder_path, top_k=3)
    retriever.index(chunks)
    for chunk in chunks:
        hits = retriever.run(chunk.text)
        assert hits[0].doc_id == chunk.doc_id and hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True) and len(hits) == 3


def test_dense_batch_equals_single_and_survives_save_load(tiny_embedder_path, chunks, tmp_path):
    retriever = DenseRetriever(model=tiny_embedder_path, top_k=2)
    retriever.index(chunks)
    queries = ["context manager", "exception"]
    batch = retriever.run_batch(queries)
    assert [[c.doc_id for c in hits] for hits in batch] == [[c.doc_id for c in retriever.run(q)] for q in queries]
    retriever.save(tmp_path)
    loaded = DenseRetriever.load(tmp_path)
    assert loaded.run_batch(queries) == batch


def test_dense_warns_when_chunks_exceed_the_embedder_window(tiny_embedder_path):
    doc = Document("word " * 400)
    with pytest.warns(UserWarning, match="128-token window"):
        DenseRetriever(model=tiny_embedder_path).index([Chunk.of(doc, 0, len(doc.text))])


def test_bm25_ranks_the_keyword_match_first_and_round_trips(chunks, tmp_path):
    retriever = BM25Retriever(top_k=2)
    retriever.index(chunks)
    assert retriever.run("anonymous lambda functions")[0].doc_id == "d3"
    assert retriever.run("the and of") == []  # stopwords only
    retriever.save(tmp_path)
    assert BM25Retriever.load(tmp_path).run("exception raise") == retriever.run("exception raise")


def test_retrievers_name_missing_index_and_empty_corpus(tiny_embedder_path):
    with pytest.raises(RuntimeError, match=r"call .index\(chunks\)"):
        BM25Retriever().run("anything")
    with pytest.raises(ValueError, match="corpus is empty"):
        DenseRetriever(model=tiny_embedder_path).index([])
    with pytest.raises(ValueError, match="top_k .* must be a positive int"):
        BM25Retriever(top_k=0)
    retriever = BM25Retriever()
    retriever.index([Chunk.of(Document("only one document here"), 0, 4)])
    with pytest.raises(ValueError, match="query is empty"):
        retriever.run("  ")


def test_reciprocal_rank_fusion_sums_reciprocal_ranks(chunks):
    a, b, c = chunks[:3]
    fused = ReciprocalRankFusion(rank_constant=60).run([a, b], [b, c])
    assert [x.doc_id for x in fused] == ["d1", "d0", "d2"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61)
    assert len(ReciprocalRankFusion(top_k=1).run([a, b], [b, c])) == 1


def test_bm25_indexes_single_character_words_and_names_an_unindexable_corpus():
    retriever = BM25Retriever(top_k=1)
    retriever.index([Chunk.of(Document("x = 0", id="a"), 0, 5), Chunk.of(Document("y = 1", id="b"), 0, 5)])
    assert retriever.run("y")[0].doc_id == "b"
    with pytest.raises(ValueError, match="no words to index"):
        BM25Retriever().index([Chunk.of(Document("!!! ..."), 0, 7)])


def test_restore_refuses_an_index_saved_with_other_settings(chunks, tmp_path):
    retriever = BM25Retriever(top_k=2)
    retriever.index(chunks)
    retriever.save(tmp_path)
    with pytest.raises(ValueError, match="saved with other settings"):
        BM25Retriever(top_k=3).restore(tmp_path)


def test_dense_dtype_casts_the_embedder_and_none_keeps_the_checkpoints(tiny_embedder_path, chunks):
    from ragpress.models import load_embedder

    retriever = DenseRetriever(model=tiny_embedder_path, top_k=2, dtype="float64")
    retriever.index(chunks)
    hits = retriever.run(chunks[1].text)
    assert hits[0].doc_id == chunks[1].doc_id and hits[0].score == pytest.approx(1.0, abs=1e-6)
    assert next(load_embedder(tiny_embedder_path, "cpu", "float64").parameters()).dtype == torch.float64
    assert next(load_embedder(tiny_embedder_path, "cpu").parameters()).dtype == torch.float32
    assert DenseRetriever.from_dict(retriever.to_dict()).dtype == "float64"


def test_bm25_takes_its_top_k_with_numpy_never_jax(chunks, monkeypatch):
    import bm25s

    backends, retrieve = [], bm25s.BM25.retrieve

    def spy(self, *args, **kwargs):
        backends.append(kwargs.get("backend_selection", "auto"))
        return retrieve(self, *args, **kwargs)

    monkeypatch.setattr(bm25s.BM25, "retrieve", spy)
    retriever = BM25Retriever(top_k=2)
    retriever.index(chunks)
    retriever.run("anonymous lambda functions")
    assert backends == ["numpy"]  # "auto" means JAX where installed, and JAX takes 75% of the GPU
