"""LangChain's own splits and the user's metadata survive ragpress stages: offsets into the source,
keys the user chose, and a compressor that can keep nothing."""

import warnings

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_text_splitters")

from pydoc_data.topics import topics  # noqa: E402

from langchain_core.documents import Document as LCDocument  # noqa: E402
from langchain_text_splitters import RecursiveCharacterTextSplitter  # noqa: E402

from ragpress import Document, Pipeline  # noqa: E402
from ragpress.chunkers.token_window import TokenWindowChunker  # noqa: E402
from ragpress.compressors.budget_packer import BudgetPacker  # noqa: E402
from ragpress.integrations.langchain import (  # noqa: E402
    BudgetPackerCompressor,
    RagpressDocumentCompressor,
    RagpressRetriever,
    RagpressTextSplitter,
)
from ragpress.retrievers.bm25 import BM25Retriever  # noqa: E402

SOURCES = {"pydoc/with": topics["with"], "pydoc/for": topics["for"]}
QUERY = "What does the with statement call when the block ends?"


def lc_splits(**metadata):
    splitter = RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=50, add_start_index=True)
    return splitter.create_documents(list(SOURCES.values()), metadatas=[{"source": name, **metadata} for name in SOURCES])


def assert_points_into_source(documents, sources=SOURCES):
    for d in documents:
        start = d.metadata["start_index"]
        assert sources[d.metadata["source"]][start : start + len(d.page_content)] == d.page_content


def test_langchain_splits_come_back_with_their_metadata_and_offsets_into_the_source(first_sentence):
    splits = lc_splits(title="Python reference")
    assert_points_into_source(splits)
    out = RagpressDocumentCompressor(first_sentence).compress_documents(splits, QUERY)
    assert len(out) == len(splits) and any(len(o.page_content) < len(s.page_content) for o, s in zip(out, splits))
    assert_points_into_source(out)  # the old adapter got 0 of 15 right: start_index became an offset into the split
    for piece, split in zip(out, splits):
        assert {k: v for k, v in piece.metadata.items() if not k.startswith("ragpress_")} | {"start_index": 0} == split.metadata | {"start_index": 0}
        assert piece.metadata["start_index"] == split.metadata["start_index"]  # the first sentence starts the split


def test_splits_of_different_sources_at_equal_offsets_are_not_confused(first_sentence):
    texts = {"a": "Alpha one. Alpha two.", "b": "Bravo one. Bravo two."}
    docs = [LCDocument(page_content=t, metadata={"source": s, "start_index": 0}) for s, t in texts.items()]
    out = RagpressDocumentCompressor(first_sentence).compress_documents(docs, "q")
    assert [(d.page_content, d.metadata["source"]) for d in out] == [("Alpha one.", "a"), ("Bravo one.", "b")]
    assert_points_into_source(out, texts)
    # without a source, splits of one document (same other metadata) share a name, others do not
    anonymous = [LCDocument(page_content=t, metadata={"start_index": 0, "title": s}) for s, t in texts.items()]
    assert len({d.metadata["ragpress_doc_id"] for d in RagpressDocumentCompressor(first_sentence).compress_documents(anonymous, "q")}) == 2


def test_unchanged_documents_keep_their_metadata_and_ragpress_adds_only_prefixed_keys(shortest_first):
    splits = lc_splits(doc_id="mine", score="user score", title="T")
    out = RagpressDocumentCompressor(shortest_first).compress_documents(splits, QUERY)
    assert sorted(len(d.page_content) for d in out) == [len(d.page_content) for d in out]
    by_text = {d.page_content: d for d in splits}
    for d in out:
        added = {k for k in d.metadata if k not in by_text[d.page_content].metadata}
        assert {k: d.metadata[k] for k in by_text[d.page_content].metadata} == by_text[d.page_content].metadata
        assert added and all(k.startswith("ragpress_") for k in added) and isinstance(d.metadata["ragpress_score"], float)


def test_a_pipeline_backed_retriever_returns_the_indexed_documents_metadata():
    user = {"doc_id": "theirs", "score": "high", "title": "The with statement", "source": "pydoc"}
    nested = {"source": "pydoc-for", "start_index": 1000}  # a document that is itself a split of a larger text
    pipeline = Pipeline(chunker=TokenWindowChunker(size=40, overlap=0)).add("bm25", BM25Retriever(top_k=4))
    pipeline.index([Document(topics["with"], id="with", metadata=user), Document(topics["for"], id="for", metadata=nested)])
    found = RagpressRetriever(pipeline).invoke(QUERY) + RagpressRetriever(pipeline).invoke("for loop else clause break")
    assert {d.metadata["ragpress_doc_id"] for d in found} == {"with", "for"}
    for d in found:
        source = pipeline.documents[d.metadata["ragpress_doc_id"]]
        start = d.metadata["ragpress_start"]
        assert source.text[start : start + len(d.page_content)] == d.page_content
        assert d.metadata["start_index"] == source.metadata.get("start_index", 0) + start
        assert {k: v for k, v in d.metadata.items() if not k.startswith("ragpress_") and k != "start_index"} == {
            k: v for k, v in source.metadata.items() if k != "start_index"}
    assert len(RagpressRetriever(pipeline, k=2).invoke(QUERY)) == 2


def test_a_compressor_that_can_keep_nothing_warns_instead_of_failing_the_chain(tiny_lm_path):
    classic = pytest.importorskip("langchain_classic.retrievers")
    splits = RagpressTextSplitter(TokenWindowChunker(size=30, overlap=0)).create_documents([topics["with"]])
    base = RagpressRetriever(BM25Retriever(top_k=3), documents=splits)
    for compressor in (RagpressDocumentCompressor(BudgetPacker(budget=2, tokenizer=tiny_lm_path)), BudgetPackerCompressor(budget=2, tokenizer=tiny_lm_path)):
        chain = classic.ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
        with pytest.warns(RuntimeWarning, match=r"BudgetPacker\(budget=2\) could keep none of the 3 documents.*raise the budget"):
            assert chain.invoke(QUERY) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert classic.ContextualCompressionRetriever(base_compressor=BudgetPackerCompressor(budget=400, tokenizer=tiny_lm_path), base_retriever=base).invoke(QUERY)
    with pytest.raises(ValueError, match="budget must be at least 1"):  # other errors still fail
        BudgetPackerCompressor(budget=0)


@pytest.mark.integration
def test_provence_on_langchain_splits_keeps_offsets_into_the_source():
    from ragpress.integrations.langchain import ProvenceCompressor

    splits = lc_splits()
    out = ProvenceCompressor(threshold=0.1).compress_documents(splits, QUERY)
    assert out and sum(len(d.page_content) for d in out) < sum(len(d.page_content) for d in splits)
    assert_points_into_source(out)
