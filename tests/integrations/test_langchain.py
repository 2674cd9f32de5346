"""The LangChain adapters with real LangChain objects (no mocks) and ragpress stages inside."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_text_splitters")

from dataclasses import replace  # noqa: E402

from langchain_core.documents import Document as LCDocument  # noqa: E402
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough  # noqa: E402

from ragpress import Answer, Chunk, Document, Pipeline, Result  # noqa: E402
from ragpress.chunkers.token_window import TokenWindowChunker  # noqa: E402
from ragpress.compressors.budget_packer import BudgetPacker  # noqa: E402
from ragpress.generators.transformers_lm import TransformersGenerator  # noqa: E402
from ragpress.integrations.langchain import (  # noqa: E402
    RagpressDocumentCompressor,
    RagpressRetriever,
    RagpressRunnable,
    RagpressTextSplitter,
    chunk_to_document,
    document_to_chunk,
)
from ragpress.retrievers.bm25 import BM25Retriever  # noqa: E402
from ragpress.retrievers.dense import DenseRetriever  # noqa: E402

QUERY = "What does the with statement call?"


def user_metadata(metadata):
    return {k: v for k, v in metadata.items() if not k.startswith("ragpress_")}


def span(document):
    """The ragpress span a LangChain Document carries."""
    return tuple(document.metadata[k] for k in ("ragpress_doc_id", "ragpress_start", "ragpress_end"))


@pytest.fixture(scope="module")
def chunker():
    return TokenWindowChunker(size=6, overlap=2)


@pytest.fixture(scope="module")
def splits(chunker, docs):
    sources = [LCDocument(page_content=d.text, id=d.id, metadata=dict(d.metadata)) for d in docs]
    return RagpressTextSplitter(chunker).split_documents(sources)


def test_text_splitter_keeps_exact_spans_doc_ids_and_metadata(splits, chunker, docs, texts):
    expected = chunker.run(docs)
    assert [span(s) for s in splits] == [(c.doc_id, c.start, c.end) for c in expected]
    assert all(texts[doc][start:end] == s.page_content for s in splits for doc, start, end in [span(s)])
    assert all(s.metadata["topic"] == span(s)[0] and s.id.startswith(span(s)[0] + ":") for s in splits)
    assert all(user_metadata(s.metadata) == {"topic": span(s)[0]} for s in splits)  # start_index only when asked


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("ab .\n\u00e9\U0001f600"), max_size=200))
def test_splits_are_the_chunkers_chunks_on_random_text(text):
    chunker = TokenWindowChunker(size=3, overlap=1)
    splits = RagpressTextSplitter(chunker).split_documents([LCDocument(page_content=text, id="d")])
    assert [document_to_chunk(s) for s in splits] == chunker.run([Document(text, id="d")])


def test_text_splitter_entry_points_agree_and_blank_text_gives_nothing(chunker, docs):
    splitter = RagpressTextSplitter(chunker)
    text = docs[0].text
    created = splitter.create_documents([text, "  "], metadatas=[{"source": "a"}, {"source": "b"}])
    assert [d.page_content for d in created] == splitter.split_text(text) == [c.text for c in chunker.run([docs[0]])]
    assert all(d.metadata["source"] == "a" for d in created)
    assert [d.page_content for d in splitter.transform_documents([LCDocument(page_content=text)])] == splitter.split_text(text)
    with pytest.raises(TypeError, match="wraps a ragpress Chunker"):
        RagpressTextSplitter(BM25Retriever())


def test_chunk_and_document_convert_both_ways_without_loss():
    child = Chunk("doc", 4, 9, "quick")
    chunk = Chunk("doc", 0, 15, "The quick brown", score=0.25, token_count=3, metadata={"a": 1, "method": "m"}, children=(child,))
    document = chunk_to_document(chunk)
    assert document.id == "doc:0-15" and span(document) == ("doc", 0, 15) and user_metadata(document.metadata) == {}
    assert document_to_chunk(document) == chunk
    mine = {"doc_id": "theirs", "start_index": 99, "score": "high", "title": "T", "source": "s"}
    kept = chunk_to_document(chunk, mine)
    assert user_metadata(kept.metadata) == mine and kept.metadata["ragpress_score"] == 0.25 and span(kept) == ("doc", 0, 15)
    assert document_to_chunk(kept) == replace(chunk, metadata=chunk.metadata | mine)


def test_a_document_without_metadata_stands_alone_and_one_without_text_is_refused(first_sentence):
    bare = document_to_chunk(LCDocument(page_content="loose text"))
    assert (bare.start, bare.end, bare.doc_id, dict(bare.metadata)) == (0, 10, document_to_chunk(LCDocument(page_content="loose text")).doc_id, {})
    assert document_to_chunk(LCDocument(page_content="x y", id="mine")).doc_id == "mine"
    with pytest.raises(ValueError, match="Document 'e' has no text"):
        document_to_chunk(LCDocument(page_content="", id="e"))
    with pytest.raises(ValueError, match="spans 2:9 .* its text has 5"):
        document_to_chunk(LCDocument(page_content="hello", metadata={"ragpress_doc_id": "d", "ragpress_start": 2, "ragpress_end": 9}))
    # the user's own keys named like ragpress's old ones are just metadata
    theirs = document_to_chunk(LCDocument(page_content="hello", metadata={"doc_id": "d", "end_index": 9, "score": "x"}))
    assert (theirs.start, theirs.end, theirs.score) == (0, 5, None) and theirs.metadata["score"] == "x"
    with pytest.raises(TypeError, match="Expected a LangChain Document"):
        document_to_chunk("hello")
    # Without metadata the compressor still works, and says where its pieces lie.
    cut = RagpressDocumentCompressor(first_sentence).compress_documents([LCDocument(page_content="One. Two.")], "q")
    assert cut[0].page_content == "One." and span(cut[0])[1:] == (0, 4)


def test_retriever_returns_the_indexed_documents_with_scores(splits, tiny_embedder_path):
    retriever = RagpressRetriever(DenseRetriever(model=tiny_embedder_path, top_k=3), documents=splits)
    found = retriever.invoke(QUERY)
    ids = {s.id: s for s in splits}
    assert len(found) == 3 and all(d.page_content == ids[d.id].page_content for d in found)
    scores = [d.metadata["ragpress_score"] for d in found]
    assert scores == sorted(scores, reverse=True)
    assert retriever.batch([QUERY, "global names"])[0] == found
    with pytest.raises(TypeError, match="Expected a ragpress Retriever"):
        RagpressRetriever(BudgetPacker())


def test_compressors_and_rerankers_as_document_compressors(splits, texts, first_sentence, shortest_first, soft_compressor):
    docs = splits[:4]
    reranked = RagpressDocumentCompressor(shortest_first).compress_documents(docs, QUERY)
    assert [len(d.page_content) for d in reranked] == sorted(len(d.page_content) for d in docs)
    cut = RagpressDocumentCompressor(first_sentence).compress_documents(docs, QUERY)
    for piece, source in zip(cut, docs):
        doc, start, end = span(piece)
        assert texts[doc][start:end] == piece.page_content
        assert piece.metadata["topic"] == source.metadata["topic"] and span(source)[1] <= start
    assert any(p.page_content != s.page_content and p.metadata["ragpress_cut"] for p, s in zip(cut, docs))
    scored = [d.model_copy(update={"metadata": d.metadata | {"ragpress_score": 0.5, "score": "user's"}}) for d in docs]
    for piece in RagpressDocumentCompressor(first_sentence).compress_documents(scored, QUERY):
        assert (piece.metadata["ragpress_score"], piece.metadata["score"]) == (0.5, "user's")
    with pytest.raises(TypeError, match="soft embeddings"):
        RagpressDocumentCompressor(soft_compressor).compress_documents(docs, QUERY)
    with pytest.raises(TypeError, match="Expected a ragpress Compressor or Reranker"):
        RagpressDocumentCompressor(BM25Retriever())


def test_contextual_compression_and_its_core_only_equivalent(splits, tiny_lm_path):
    base = RagpressRetriever(BM25Retriever(top_k=4), documents=splits)
    compressor = RagpressDocumentCompressor(BudgetPacker(budget=20, tokenizer=tiny_lm_path))
    core_only = RunnableParallel(docs=base, query=RunnablePassthrough()) | RunnableLambda(
        lambda x: compressor.compress_documents(x["docs"], x["query"])
    )
    packed = core_only.invoke(QUERY)
    assert 1 <= len(packed) < 4 and sum(compressor.stage.count_tokens(d.page_content) for d in packed) <= 20
    classic = pytest.importorskip("langchain_classic.retrievers")
    retriever = classic.ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
    assert retriever.invoke(QUERY) == packed


@pytest.fixture(scope="module")
def rag(tiny_lm_path, docs):
    pipeline = Pipeline(chunker=TokenWindowChunker(size=6, overlap=2))
    pipeline.add("bm25", BM25Retriever(top_k=3)).add("pack", BudgetPacker(budget=40, tokenizer=tiny_lm_path), after="bm25")
    pipeline.add("answer", TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=5), after="pack")
    pipeline.index(docs)
    return pipeline


def test_pipeline_runnable_invokes_batches_and_streams(rag):
    runnable = RagpressRunnable(rag)
    text = runnable.invoke(QUERY)
    assert isinstance(text, str) and text == rag.run(QUERY).output.text
    assert runnable.batch([QUERY, "global names"]) == [r.output.text for r in rag.run_batch([QUERY, "global names"])]
    pieces = list(runnable.stream(QUERY))
    assert len(pieces) >= 2 and "".join(pieces).strip() == text
    assert (runnable | RunnableLambda(str.upper)).invoke(QUERY) == text.upper()
    result = RagpressRunnable(rag, return_result=True).invoke(QUERY)
    assert isinstance(result, Result) and isinstance(result.output, Answer) and len(result.trace) == 3


def test_pipeline_runnable_without_a_generator_gives_documents(rag, tiny_lm_path, docs, texts):
    pipeline = Pipeline(chunker=TokenWindowChunker(size=6, overlap=2))
    pipeline.add("bm25", BM25Retriever(top_k=3)).add("pack", BudgetPacker(budget=40, tokenizer=tiny_lm_path), after="bm25")
    pipeline.index(docs)
    runnable = RagpressRunnable(pipeline)
    pieces = runnable.invoke(QUERY)
    assert pieces and all(texts[span(d)[0]][d.metadata["start_index"] : span(d)[2]] == d.page_content for d in pieces)
    assert all(d.metadata["topic"] == span(d)[0] for d in pieces)  # the indexed document's metadata
    assert list(runnable.stream(QUERY)) == [pieces]
    with pytest.raises(TypeError, match="Only a pipeline that ends in a generator can stream"):
        pipeline.stream(QUERY)
    with pytest.raises(TypeError, match="wraps a ragpress Pipeline"):
        RagpressRunnable(BM25Retriever())
    with pytest.raises(ValueError, match="exactly one final stage"):
        RagpressRunnable(Pipeline().add("a", BM25Retriever()).add("b", BM25Retriever()))
    failed = RagpressRunnable(rag).batch([QUERY, "  "], return_exceptions=True)
    assert isinstance(failed[0], str) and isinstance(failed[1], ValueError)
