"""LlamaIndex has no packaged standard suite, so these test its documented contracts for retrievers,
postprocessors and LLMs (sync, async, streaming, callback and instrumentation events, metadata
exclusion) with LlamaIndex's own inputs: SentenceSplitter nodes, a VectorStoreIndex retriever
(MockEmbedding) and a RetrieverQueryEngine."""

import asyncio
import dataclasses
import statistics

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler  # noqa: E402
from llama_index.core.embeddings import MockEmbedding  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.llms import ChatMessage  # noqa: E402
from llama_index.core.node_parser import SentenceSplitter  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle  # noqa: E402

from ragpress.compressors.provence import Provence  # noqa: E402
from ragpress.core.prompt import SYSTEM_PROMPT  # noqa: E402
from ragpress.generators.transformers_lm import TransformersGenerator  # noqa: E402
from ragpress.integrations.llama_index import ProvencePostprocessor, RagpressLLM, RagpressRetriever, to_llama_index  # noqa: E402
from ragpress.retrievers.dense import DenseRetriever  # noqa: E402

QUERY = "What does the with statement call?"


@pytest.fixture(scope="module")
def llama_docs(docs):
    return to_llama_index([dataclasses.replace(d, metadata={"title": d.id.title()}) for d in docs])


@pytest.fixture(scope="module")
def split_nodes(llama_docs):
    """LlamaIndex's own splitter: nodes of a sentence or more, offsets set by LlamaIndex."""
    return SentenceSplitter(chunk_size=40, chunk_overlap=0).get_nodes_from_documents(llama_docs)


@pytest.fixture(scope="module")
def vector_hits(split_nodes):
    index = VectorStoreIndex(split_nodes, embed_model=MockEmbedding(embed_dim=8))
    return index.as_retriever(similarity_top_k=len(split_nodes)).retrieve(QUERY)


@pytest.fixture(scope="module")
def provence(split_nodes, tiny_provence_path):
    """Provence with the tiny checkpoint, its threshold at the median sentence probability: it cuts."""
    scored = Provence(model=tiny_provence_path).score(QUERY, [n.text for n in split_nodes])
    threshold = statistics.median(s["prob"] for r in scored for s in r["sentences"])
    return ProvencePostprocessor(model=tiny_provence_path, threshold=threshold, tokenizer="minilm-l6")


@dataclasses.dataclass
class Recording(TransformersGenerator):
    """Keeps the chat messages it is asked to answer."""

    def chat(self, messages):
        self.received = [*getattr(self, "received", []), messages]
        return super().chat(messages)


class Events(BaseEventHandler):
    names: list = []

    @classmethod
    def class_name(cls) -> str:
        return "Events"

    def handle(self, event, **kwargs):
        self.names.append(type(event).__name__)


@pytest.fixture()
def events():
    handler, dispatcher = Events(names=[]), get_dispatcher()
    dispatcher.add_event_handler(handler)
    yield handler.names
    dispatcher.event_handlers.remove(handler)


def test_the_llm_prompt_holds_the_kept_text_under_llamaindex_template_and_no_ragpress_key(vector_hits, split_nodes, provence, tiny_lm_path, tiny_lm):
    generator = Recording(model=tiny_lm_path, device="cpu", max_new_tokens=3)
    retriever = VectorStoreIndex(split_nodes, embed_model=MockEmbedding(embed_dim=8)).as_retriever(similarity_top_k=len(split_nodes))
    response = RetrieverQueryEngine.from_args(retriever, llm=RagpressLLM(generator), node_postprocessors=[provence]).query(QUERY)
    kept = [hit.node for hit in response.source_nodes]
    assert kept and all({"ragpress_chunk_index", "ragpress_rerank_score"} <= set(n.metadata) for n in kept)
    [messages] = generator.received
    prompt = "\n".join(m["content"] for m in messages)
    assert all(n.text in prompt and f"title: {n.metadata['title']}" in prompt for n in kept)
    assert "ragpress" not in prompt and "chunk_index" not in prompt and "rerank_score" not in prompt
    # LlamaIndex's chat QA template as it is, roles kept, through the model's chat template; no ragpress RAG prompt
    assert [m["role"] for m in messages] == ["system", "user"] and messages[0]["content"].startswith("You are an expert Q&A system")
    assert SYSTEM_PROMPT not in prompt and "Context information is below" in messages[1]["content"]
    assert generator.chat(messages).prompt_tokens == tiny_lm.chat_ids(messages).shape[1]


def test_postprocessor_contract_on_llamaindex_nodes_keeps_exact_offsets(vector_hits, llama_docs, split_nodes, provence):
    texts = {d.doc_id: d.text for d in llama_docs}
    by_str = provence.postprocess_nodes(vector_hits, query_str=QUERY)
    by_bundle = provence.postprocess_nodes(vector_hits, query_bundle=QueryBundle(QUERY))
    by_async = asyncio.run(provence.apostprocess_nodes(vector_hits, query_str=QUERY))
    seen = lambda hits: [(h.node.node_id, h.node.text, h.score) for h in hits]  # noqa: E731
    assert by_str and seen(by_str) == seen(by_bundle) == seen(by_async)
    assert any(h.node.text not in {n.text for n in split_nodes} for h in by_str)  # Provence cut some nodes
    for hit in by_str:
        node = hit.node
        assert isinstance(hit, NodeWithScore) and texts[node.ref_doc_id][node.start_char_idx : node.end_char_idx] == node.text
        assert node.metadata["title"] == node.ref_doc_id.title()
        for mode in ("llm", "embed"):
            assert "ragpress" not in node.get_content(metadata_mode=mode) and "title" in node.get_content(metadata_mode=mode)
    with pytest.raises(ValueError, match="needs the query"):
        provence.postprocess_nodes(vector_hits)


def test_retriever_contract_with_llamaindex_nodes_events_and_async(split_nodes, tiny_embedder_path, events):
    debug = LlamaDebugHandler()
    retriever = RagpressRetriever(DenseRetriever(model=tiny_embedder_path, top_k=3), nodes=split_nodes, callback_manager=CallbackManager([debug]))
    hits = retriever.retrieve(QUERY)
    again = asyncio.run(retriever.aretrieve(QueryBundle(QUERY)))
    assert len(hits) == 3 and all(isinstance(h, NodeWithScore) and any(h.node is n for n in split_nodes) for h in hits)
    assert [(h.node.node_id, h.score) for h in again] == [(h.node.node_id, h.score) for h in hits]
    assert len(debug.get_event_pairs(CBEventType.RETRIEVE)) == 2
    assert events.count("RetrievalStartEvent") == 2 and events.count("RetrievalEndEvent") == 2


def test_llm_contract_sync_async_streaming_events_and_metadata(tiny_lm_path, tiny_lm, events):
    generator = TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=6)
    debug = LlamaDebugHandler()
    llm = RagpressLLM(generator, context_window=512, callback_manager=CallbackManager([debug]))
    meta = llm.metadata
    assert (meta.is_chat_model, meta.context_window, meta.num_output, meta.model_name) == (True, 512, 6, tiny_lm_path)

    messages = [ChatMessage(role="system", content="Be terse."), ChatMessage(role="user", content="Hello")]
    as_dicts = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hello"}]
    text = generator.chat(as_dicts).text
    chat = llm.chat(messages)
    assert (chat.message.role, chat.message.content) == ("assistant", text)
    assert chat.additional_kwargs == {"prompt_tokens": tiny_lm.chat_ids(as_dicts).shape[1], "completion_tokens": 6}
    completion = llm.complete("Hello")
    assert completion.additional_kwargs["prompt_tokens"] == tiny_lm.chat_ids(as_dicts[1:]).shape[1]
    assert completion.text == generator.chat(as_dicts[1:]).text

    streamed = list(llm.stream_chat(messages))
    completed = list(llm.stream_complete("Hello"))
    assert len(streamed) > 1 and "".join(r.delta for r in streamed) == streamed[-1].message.content and streamed[-1].message.content.strip() == text
    assert len(completed) > 1 and completed[-1].text.strip() == completion.text

    async def in_async():
        return (await llm.achat(messages), await llm.acomplete("Hello"),
                [r async for r in await llm.astream_chat(messages)], [r async for r in await llm.astream_complete("Hello")])

    achat, acomplete, astream_chat, astream_complete = asyncio.run(in_async())
    assert achat.message.content == text and acomplete.text == completion.text
    assert [r.delta for r in astream_chat] == [r.delta for r in streamed] and [r.text for r in astream_complete] == [r.text for r in completed]
    assert len(debug.get_event_pairs(CBEventType.LLM)) == 8
    assert events.count("LLMChatStartEvent") == 4 and events.count("LLMCompletionStartEvent") == 4
