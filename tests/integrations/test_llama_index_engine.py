"""A whole Pipeline as a query engine, document converters, a Pipeline's document metadata on its
hits, per-method postprocessors, a budget nothing fits, and async that overlaps."""

import asyncio
import dataclasses
import time

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document as LlamaDocument  # noqa: E402
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import NodeWithScore  # noqa: E402

from ragpress import Pipeline  # noqa: E402
from ragpress.chunkers.token_window import TokenWindowChunker  # noqa: E402
from ragpress.compressors.budget_packer import BudgetPacker  # noqa: E402
from ragpress.compressors.edu_select import EDUSelectCompressor  # noqa: E402
from ragpress.core.types import Answer, Document  # noqa: E402
from ragpress.generators.base import Generator  # noqa: E402
from ragpress.integrations.llama_index import (  # noqa: E402
    BudgetPackerPostprocessor,
    ChunkerNodeParser,
    EDUSelectPostprocessor,
    ProvencePostprocessor,
    RagpressLLM,
    RagpressNodePostprocessor,
    RagpressQueryEngine,
    RagpressRetriever,
    RebelPostprocessor,
    from_llama_index,
    node_to_chunk,
    to_llama_index,
)
from ragpress.retrievers.base import Reranker  # noqa: E402
from ragpress.retrievers.bm25 import BM25Retriever  # noqa: E402

QUERY = "What does the with statement call?"
DELAY = 0.2  # seconds each slow stage takes: a query through retriever, reranker and LLM takes 3 * DELAY
WORDS = ("It", " calls", " __exit__", ".")


@dataclasses.dataclass
class SlowBM25(BM25Retriever):
    def search_batch(self, queries, top_k):
        time.sleep(DELAY)
        return super().search_batch(queries, top_k)


@dataclasses.dataclass
class SlowReranker(Reranker):
    def rerank(self, query, chunks):
        time.sleep(DELAY)
        return chunks


@dataclasses.dataclass
class ScriptedGenerator(Generator):
    """Replies with WORDS after DELAY seconds, or streams them one by one over DELAY seconds."""

    def generate(self, context):
        time.sleep(DELAY)
        return Answer("".join(WORDS), context, "scripted", prompt_tokens=len(context.pieces), completion_tokens=len(WORDS))

    def stream(self, context):
        for word in WORDS:
            time.sleep(DELAY / len(WORDS))
            yield word


@pytest.fixture(scope="module")
def titled(docs):
    """The corpus with the metadata users keep, some of it under names ragpress also uses."""
    return [dataclasses.replace(d, metadata={"title": d.id.title(), "source": f"ref/{d.id}", "score": "high", "start_index": -1}) for d in docs]


@pytest.fixture(scope="module")
def pipeline(titled):
    rag = Pipeline(chunker=TokenWindowChunker(size=8, overlap=2)).add("bm25", BM25Retriever(top_k=3))
    rag.add("pack", BudgetPacker(budget=40, tokenizer="minilm-l6"), after="bm25").add("answer", ScriptedGenerator(), after="pack")
    rag.index(titled)
    return rag


def check_sources(hits, documents):
    texts = {d.id: d for d in documents}
    for hit in hits:
        node, document = hit.node, texts[hit.node.ref_doc_id]
        assert isinstance(hit, NodeWithScore) and document.text[node.start_char_idx : node.end_char_idx] == node.text
        assert {k: node.metadata[k] for k in document.metadata} == dict(document.metadata)  # the user's keys, untouched
        assert "ragpress" not in node.get_content(metadata_mode="llm") and "ragpress" not in node.get_content(metadata_mode="embed")


def test_query_engine_answers_with_the_pipelines_sources_sync_async_and_streaming(pipeline, titled):
    result = pipeline.run(QUERY)
    engine = RagpressQueryEngine(pipeline)
    response = engine.query(QUERY)
    assert response.response == result.output.text and response.metadata["completion_tokens"] == len(WORDS)
    assert [(h.node.ref_doc_id, h.node.start_char_idx, h.node.end_char_idx) for h in response.source_nodes] == [
        (p.doc_id, p.start, p.end) for p in result.output.sources]
    check_sources(response.source_nodes, titled)
    assert "pack" in response.metadata["trace"]
    assert asyncio.run(engine.aquery(QUERY)).response == response.response

    streaming = RagpressQueryEngine(pipeline, streaming=True).query(QUERY)
    assert isinstance(streaming, StreamingResponse) and list(streaming.response_gen) == list(WORDS)
    assert [h.node.node_id for h in streaming.source_nodes] == [h.node.node_id for h in response.source_nodes]

    async def stream_async():
        answer = await RagpressQueryEngine(pipeline, streaming=True).aquery(QUERY)
        return answer, [piece async for piece in answer.response_gen]

    answer, pieces = asyncio.run(stream_async())
    assert isinstance(answer, AsyncStreamingResponse) and pieces == list(WORDS) and len(answer.source_nodes) == len(response.source_nodes)
    with pytest.raises(TypeError, match="ends in a generator, got a Pipeline ending in 'bm25'"):
        RagpressQueryEngine(Pipeline().add("bm25", BM25Retriever()))


def test_a_pipeline_retriever_returns_its_documents_metadata_beside_ragpress_keys(pipeline, titled):
    bm25_only = Pipeline(chunker=TokenWindowChunker(size=8, overlap=2)).add("bm25", BM25Retriever(top_k=3))
    bm25_only.index(titled)
    hits = RagpressRetriever(bm25_only).retrieve(QUERY)
    assert 1 <= len(hits) <= 3
    check_sources(hits, titled)
    for hit in hits:
        assert hit.node.metadata["score"] == "high" and hit.node.metadata["start_index"] == -1  # not overwritten by ragpress
        assert hit.node.metadata["ragpress_method"] == "bm25" and hit.node.metadata["ragpress_token_count"] >= 1
        chunk = node_to_chunk(hit)
        assert chunk.score == hit.score and chunk.metadata["score"] == "high" and chunk.metadata["method"] == "bm25"


def test_documents_convert_both_ways_with_ids_and_metadata(titled):
    llama = to_llama_index(titled)
    assert [(d.doc_id, d.text, d.metadata) for d in llama] == [(d.id, d.text, dict(d.metadata)) for d in titled]
    assert from_llama_index(llama) == titled
    assert from_llama_index([LlamaDocument(text="loose", id_="x", metadata={"ragpress_method": "m", "k": 1})]) == [Document("loose", id="x", metadata={"k": 1})]
    nodes = ChunkerNodeParser(TokenWindowChunker(size=8, overlap=2)).get_nodes_from_documents(llama)
    assert all(n.metadata["title"] == n.ref_doc_id.title() for n in nodes)
    with pytest.raises(TypeError, match="list of ragpress Documents"):
        to_llama_index(titled[0])
    with pytest.raises(TypeError, match="list of LlamaIndex documents"):
        from_llama_index(["text"])


def test_one_postprocessor_per_method_built_from_its_settings(tiny_provence_path, tiny_lm_path, pipeline):
    packer = BudgetPackerPostprocessor(budget=12, tokenizer="minilm-l6")
    assert packer.stage == BudgetPacker(budget=12, tokenizer="minilm-l6") and packer.class_name() == "BudgetPackerPostprocessor"
    hits = RagpressRetriever(BM25Retriever(top_k=4), nodes=ChunkerNodeParser(TokenWindowChunker(size=6, overlap=2)).get_nodes_from_documents(
        to_llama_index(list(pipeline.documents.values())))).retrieve(QUERY)
    same = RagpressNodePostprocessor(BudgetPacker(budget=12, tokenizer="minilm-l6")).postprocess_nodes(hits, query_str=QUERY)
    assert [h.node.node_id for h in packer.postprocess_nodes(hits, query_str=QUERY)] == [h.node.node_id for h in same]
    provence = ProvencePostprocessor(model=tiny_provence_path, threshold=0.3, top_k=2)
    assert (provence.stage.model, provence.stage.threshold, provence.stage.top_k) == (tiny_provence_path, 0.3, 2)
    assert EDUSelectPostprocessor(budget=50).stage == EDUSelectCompressor(budget=50)
    assert RebelPostprocessor(top_k=2, model=tiny_lm_path).stage.top_k == 2
    with pytest.raises(ValueError, match=r"Provence has no setting 'top_n' \(ragpress's name for 'top_n' is 'top_k'\); its settings are .*'top_k'"):
        ProvencePostprocessor(top_n=2)  # the same check and message as LangChain's ProvenceCompressor
    with pytest.raises(ValueError, match="setting 'budget' must be int"):
        BudgetPackerPostprocessor(budget="many")


def test_a_budget_nothing_fits_gives_no_nodes_and_a_warning_not_an_aborted_query(pipeline):
    nodes = ChunkerNodeParser(TokenWindowChunker(size=8, overlap=2)).get_nodes_from_documents(to_llama_index(list(pipeline.documents.values())))
    retriever = RagpressRetriever(BM25Retriever(top_k=3), nodes=nodes)
    tiny_budget = BudgetPackerPostprocessor(budget=1, tokenizer="minilm-l6")
    with pytest.warns(UserWarning, match=r"BudgetPacker kept no nodes.*budget=1 tokens.*raise the budget"):
        assert tiny_budget.postprocess_nodes(retriever.retrieve(QUERY), query_str=QUERY) == []
    engine = RetrieverQueryEngine.from_args(retriever, llm=RagpressLLM(ScriptedGenerator()), node_postprocessors=[tiny_budget])
    with pytest.warns(UserWarning, match="kept no nodes"):
        response = engine.query(QUERY)
    assert response.source_nodes == [] and isinstance(response.response, str)


def test_gathered_async_queries_overlap(pipeline):
    """A RetrieverQueryEngine over a slow retriever, reranker and LLM (3 * DELAY a query), and a
    RagpressQueryEngine over a slow pipeline (2 * DELAY): 3 gathered queries take about as long as one."""
    nodes = ChunkerNodeParser(TokenWindowChunker(size=8, overlap=2)).get_nodes_from_documents(to_llama_index(list(pipeline.documents.values())))
    engine = RetrieverQueryEngine.from_args(RagpressRetriever(SlowBM25(top_k=2), nodes=nodes), llm=RagpressLLM(ScriptedGenerator()),
                                            node_postprocessors=[RagpressNodePostprocessor(SlowReranker())])
    slow = Pipeline(chunker=TokenWindowChunker(size=8, overlap=2)).add("bm25", SlowBM25(top_k=2))
    slow.add("pack", BudgetPacker(budget=40, tokenizer="minilm-l6"), after="bm25").add("answer", ScriptedGenerator(), after="pack")
    slow.index(list(pipeline.documents.values()))

    async def gathered(query_engine):
        start = time.perf_counter()
        answers = await asyncio.gather(*(query_engine.aquery(QUERY) for _ in range(3)))
        assert all(a.response == "".join(WORDS) for a in answers)
        return time.perf_counter() - start

    asyncio.run(gathered(engine))  # warm up
    seconds = asyncio.run(gathered(engine)), asyncio.run(gathered(RagpressQueryEngine(slow)))
    print(f"3 gathered queries: RetrieverQueryEngine {seconds[0]:.3f} s, RagpressQueryEngine {seconds[1]:.3f} s")
    # one after another: 3 * 3 * DELAY and 3 * 2 * DELAY; one stage that blocks the loop adds 2 * DELAY
    assert seconds[0] < 1.5 * 3 * DELAY and seconds[1] < 1.5 * 2 * DELAY
