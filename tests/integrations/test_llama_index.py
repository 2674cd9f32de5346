"""The LlamaIndex adapters with real LlamaIndex objects (no mocks) and ragpress stages inside."""

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llama_index.core")

from llama_index.core import Document as LlamaDocument  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import ImageNode, NodeRelationship, NodeWithScore, TextNode  # noqa: E402

from ragpress import Chunk, Document, Pipeline  # noqa: E402
from ragpress.chunkers.token_window import TokenWindowChunker  # noqa: E402
from ragpress.compressors.budget_packer import BudgetPacker  # noqa: E402
from ragpress.generators.transformers_lm import TransformersGenerator  # noqa: E402
from ragpress.integrations.llama_index import (  # noqa: E402
    ChunkerNodeParser,
    RagpressLLM,
    RagpressNodePostprocessor,
    RagpressRetriever,
    chunk_to_node,
    node_to_chunk,
)
from ragpress.retrievers.bm25 import BM25Retriever  # noqa: E402
from ragpress.retrievers.dense import DenseRetriever  # noqa: E402
from ragpress.retrievers.fusion import ReciprocalRankFusion  # noqa: E402

QUERY = "What does the with statement call?"


@pytest.fixture(scope="module")
def llama_docs(docs):
    return [LlamaDocument(text=d.text, id_=d.id, metadata=dict(d.metadata)) for d in docs]


@pytest.fixture(scope="module")
def chunker():
    return TokenWindowChunker(size=6, overlap=2)


@pytest.fixture(scope="module")
def nodes(llama_docs, chunker):
    return ChunkerNodeParser(chunker).get_nodes_from_documents(llama_docs)


def test_node_parser_keeps_the_chunkers_exact_spans_and_the_documents_metadata(nodes, chunker, llama_docs, docs):
    expected = chunker.run(docs)
    assert [(n.ref_doc_id, n.start_char_idx, n.end_char_idx) for n in nodes] == [(c.doc_id, c.start, c.end) for c in expected]
    texts = {d.doc_id: d.text for d in llama_docs}
    assert all(texts[n.ref_doc_id][n.start_char_idx : n.end_char_idx] == n.text for n in nodes)
    assert all(n.metadata["topic"] == n.ref_doc_id and n.metadata["ragpress_token_count"] >= 1 for n in nodes)
    assert all(n.metadata["ragpress_method"] == "token_window" and "method" not in n.metadata for n in nodes)
    for mode in ("llm", "embed"):
        assert "ragpress" not in nodes[0].get_content(metadata_mode=mode) and "topic" in nodes[0].get_content(metadata_mode=mode)
    assert nodes[1].relationships[NodeRelationship.PREVIOUS].node_id == nodes[0].node_id


def test_node_parser_offsets_stay_exact_where_text_repeats():
    # LlamaIndex re-finds each node's text after the previous node's start: here it would find the
    # second chunk's "two" inside the first chunk.
    text = "one two two two"
    nodes = ChunkerNodeParser(TokenWindowChunker(size=3, overlap=0)).get_nodes_from_documents([LlamaDocument(text=text)])
    assert [(n.text, n.start_char_idx, n.end_char_idx) for n in nodes] == [("one two two", 0, 11), ("two", 12, 15)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("ab .\n\u00e9\U0001f600"), max_size=200))
def test_nodes_are_the_chunkers_chunks_on_random_text(text):
    chunker = TokenWindowChunker(size=3, overlap=1)
    nodes = ChunkerNodeParser(chunker).get_nodes_from_documents([LlamaDocument(text=text, id_="d")])
    assert [node_to_chunk(n) for n in nodes] == chunker.run([Document(text, id="d")])


def test_node_parser_gives_no_nodes_for_a_blank_document_and_refuses_a_non_chunker():
    assert ChunkerNodeParser(TokenWindowChunker()).get_nodes_from_documents([LlamaDocument(text="  \n ")]) == []
    with pytest.raises(ValueError, match="instance of Chunker"):
        ChunkerNodeParser(BM25Retriever())


def test_chunk_and_node_convert_both_ways_without_loss():
    child = Chunk("doc", 4, 9, "quick", metadata={"role": "head"})
    chunk = Chunk("doc", 0, 15, "The quick brown", score=0.5, token_count=3, metadata={"a": 1, "tags": ["x"], "children": "theirs"}, children=(child,))
    node = chunk_to_node(chunk)
    assert (node.ref_doc_id, node.start_char_idx, node.end_char_idx, node.node_id) == ("doc", 0, 15, "doc:0-15")
    assert node_to_chunk(NodeWithScore(node=node, score=0.5)) == chunk
    assert node_to_chunk(node).score is None


def test_a_node_without_text_or_with_wrong_offsets_is_refused_and_one_without_a_source_stands_alone():
    with pytest.raises(ValueError, match="ImageNode 'img' has no text"):
        node_to_chunk(ImageNode(id_="img", image="aGk="))
    with pytest.raises(ValueError, match="spans 0:3 .* its text has 5"):
        node_to_chunk(chunk_to_node(Chunk("d", 0, 5, "hello")).model_copy(update={"end_char_idx": 3}))
    chunk = node_to_chunk(TextNode(id_="n1", text="loose text", metadata={"k": "v"}))
    assert (chunk.doc_id, chunk.start, chunk.end, dict(chunk.metadata)) == ("n1", 0, 10, {"k": "v"})
    with pytest.raises(TypeError, match="Expected a LlamaIndex node"):
        node_to_chunk("text")


def test_retriever_returns_the_indexed_nodes_themselves(nodes, tiny_embedder_path):
    retriever = RagpressRetriever(DenseRetriever(model=tiny_embedder_path, top_k=4), nodes=nodes)
    found = retriever.retrieve(QUERY)
    assert len(found) == 4 and all(any(hit.node is n for n in nodes) for hit in found)
    assert [hit.score for hit in found] == sorted((hit.score for hit in found), reverse=True)


def test_a_hybrid_pipeline_serves_as_one_retriever(nodes, tiny_embedder_path, docs):
    hybrid = Pipeline(chunker=TokenWindowChunker(size=6, overlap=2))
    hybrid.add("dense", DenseRetriever(model=tiny_embedder_path, top_k=3)).add("bm25", BM25Retriever(top_k=3))
    hybrid.add("fuse", ReciprocalRankFusion(top_k=4), after=["dense", "bm25"])
    hybrid.index(docs)
    found = RagpressRetriever(hybrid).retrieve(QUERY)
    assert 1 <= len(found) <= 4 and {hit.node.node_id for hit in found} <= {n.node_id for n in nodes}
    with pytest.raises(TypeError, match="index a Pipeline with pipeline.index"):
        RagpressRetriever(hybrid, nodes=nodes)
    with pytest.raises(TypeError, match="Expected a ragpress Retriever"):
        RagpressRetriever(BudgetPacker())


def test_postprocessors_take_rerankers_and_compressors_that_cut_pieces(nodes, texts, first_sentence, shortest_first):
    hits = [NodeWithScore(node=n, score=1.0) for n in nodes[:4]]
    reranked = RagpressNodePostprocessor(shortest_first).postprocess_nodes(hits, query_str=QUERY)
    assert sorted(len(h.node.text) for h in reranked) == [len(h.node.text) for h in reranked]
    assert all(any(h.node is n for n in nodes) for h in reranked)  # unchanged spans: the same nodes

    cut = RagpressNodePostprocessor(first_sentence).postprocess_nodes(hits, query_str=QUERY)
    for piece, hit in zip(cut, hits):
        node, parent = piece.node, hit.node
        assert texts[node.ref_doc_id][node.start_char_idx : node.end_char_idx] == node.text
        assert node.ref_doc_id == parent.ref_doc_id and parent.start_char_idx <= node.start_char_idx
        assert node.metadata["topic"] == parent.metadata["topic"] and piece.score == 1.0
        assert node.metadata["ragpress_cut"] is True and "cut" not in node.metadata and node is not parent
        # a whole span with the stage's bookkeeping is a copy of its node (same id); a cut piece is a node of its own
        assert (node.node_id == parent.node_id) == (node.text == parent.text)
        assert "ragpress" not in node.get_content(metadata_mode="llm") and "ragpress" not in node.get_content(metadata_mode="embed")
    assert any(piece.node.text != hit.node.text for piece, hit in zip(cut, hits))
    assert all("ragpress_cut" not in n.metadata for n in nodes)  # the caller's nodes are left as they were


def test_postprocessor_errors_are_clear(nodes, shortest_first, soft_compressor):
    hits = [NodeWithScore(node=n) for n in nodes[:2]]
    with pytest.raises(ValueError, match="needs the query"):
        RagpressNodePostprocessor(shortest_first).postprocess_nodes(hits)
    with pytest.raises(TypeError, match="soft embeddings"):
        RagpressNodePostprocessor(soft_compressor).postprocess_nodes(hits, query_str=QUERY)
    with pytest.raises(TypeError, match="Expected a ragpress Compressor or Reranker"):
        RagpressNodePostprocessor(BM25Retriever())
    assert RagpressNodePostprocessor(shortest_first).postprocess_nodes([], query_str=QUERY) == []


def test_a_retriever_query_engine_runs_on_ragpress_stages(nodes, tiny_lm_path, tiny_embedder_path, shortest_first):
    packer = BudgetPacker(budget=30, tokenizer=tiny_lm_path)
    llm = RagpressLLM(TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=4))
    engine = RetrieverQueryEngine.from_args(
        RagpressRetriever(DenseRetriever(model=tiny_embedder_path, top_k=5), nodes=nodes),
        llm=llm,
        node_postprocessors=[RagpressNodePostprocessor(dataclasses.replace(shortest_first, top_k=4)), RagpressNodePostprocessor(packer)],
    )
    response = engine.query(QUERY)
    assert isinstance(response.response, str) and 1 <= len(response.source_nodes) <= 4
    assert sum(packer.count_tokens(n.node.text) for n in response.source_nodes) <= 30
    assert {n.node.node_id for n in response.source_nodes} <= {n.node_id for n in nodes}

    streaming = RetrieverQueryEngine.from_args(RagpressRetriever(BM25Retriever(top_k=2), nodes=nodes), llm=llm, streaming=True)
    pieces = list(streaming.query(QUERY).response_gen)
    assert len(pieces) >= 2 and llm.complete("Hello").additional_kwargs["completion_tokens"] == 4
