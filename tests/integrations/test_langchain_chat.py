"""The LangChain chat model over ragpress generators, the document converters, the per-method
compressors, and LangChain's own vector store as input."""

import dataclasses
import json
from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document as LCDocument  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

from ragpress import Answer, Context, Document  # noqa: E402
from ragpress.compressors.budget_packer import BudgetPacker  # noqa: E402
from ragpress.generators.base import Generator  # noqa: E402
from ragpress.generators.transformers_lm import TransformersGenerator  # noqa: E402
from ragpress.integrations.langchain import (  # noqa: E402
    BudgetPackerCompressor,
    EDUSelectCompressor,
    LongCodeZipCompressor,
    ProvenceCompressor,
    RagpressChatModel,
    RagpressDocumentCompressor,
    RebelCompressor,
    from_langchain,
    to_langchain,
)


@dataclasses.dataclass
class EchoGenerator(Generator):
    """Answers with the messages it would send, as JSON, streamed a few characters at a time."""

    def generate(self, context: Context) -> Answer:
        return Answer(json.dumps(self.messages(context)), context, "echo", prompt_tokens=7, completion_tokens=3)

    def stream(self, context: Context) -> Iterator[str]:
        text = self.generate(context).text
        yield from (text[i : i + 5] for i in range(0, len(text), 5))


CHAT = [SystemMessage("Talk like a pirate."), HumanMessage("Hi"), AIMessage("Ahoy"), HumanMessage("What is a with statement?")]
SENT = [{"role": "system", "content": "Talk like a pirate."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Ahoy"}, {"role": "user", "content": "What is a with statement?"}]


def test_messages_reach_the_generator_as_they_are():
    model = RagpressChatModel(generator=EchoGenerator())
    reply = model.invoke(CHAT)
    assert json.loads(reply.content) == SENT  # roles kept, no RAG system prompt of ragpress's
    assert reply.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    chunks = list(model.stream(CHAT))
    assert len(chunks) > 2 and "".join(c.content for c in chunks) == reply.content
    assert model.invoke(CHAT, stop=["assistant"]).content == json.dumps(SENT).split("assistant")[0]
    assert "".join(c.content for c in model.stream(CHAT, stop=["assistant"])) == json.dumps(SENT).split("assistant")[0]
    with pytest.raises(ValueError, match="do not call tools"):
        model.invoke([HumanMessage("x"), ToolMessage("1", tool_call_id="t")])
    with pytest.raises(TypeError, match="no model setting"):
        model.invoke(CHAT, model="other")


def test_a_transformers_generator_chats_streams_and_counts_tokens(tiny_lm_path):
    # a tiny random model repeats "\n" when greedy; the penalty makes it say something
    model = RagpressChatModel(generator=TransformersGenerator(model=tiny_lm_path, device="cpu", repetition_penalty=1.5), max_tokens=6)
    reply = model.invoke(CHAT)
    assert reply.content and reply.usage_metadata["output_tokens"] <= 6 and reply.usage_metadata["input_tokens"] > 20
    chunks = list(model.stream(CHAT))
    assert len([c for c in chunks if c.content]) > 1 and "".join(c.content for c in chunks).strip() == reply.content
    assert chunks[-1].usage_metadata["input_tokens"] == reply.usage_metadata["input_tokens"]
    assert reply.response_metadata["model_name"] == tiny_lm_path


def test_documents_convert_both_ways():
    docs = [Document("The with statement.", id="w", metadata={"title": "with", "start_index": 3}), Document("Loops.", metadata={})]
    lc = to_langchain(docs)
    assert [(d.id, d.page_content, d.metadata) for d in lc] == [(d.id, d.text, dict(d.metadata)) for d in docs]
    assert from_langchain(lc) == docs
    assert from_langchain([LCDocument(page_content="x")])[0].id == Document("x").id


def test_one_class_per_method_builds_its_stage_from_settings(tiny_lm_path):
    assert ProvenceCompressor(threshold=0.3, top_k=2).stage.threshold == 0.3
    assert LongCodeZipCompressor(budget=64).stage.budget == 64
    assert EDUSelectCompressor(budget=50).stage.budget == 50
    assert RebelCompressor(top_k=2).stage.top_k == 2 and type(RebelCompressor(top_k=2).stage).__name__ == "RebelReranker"
    with pytest.raises(TypeError, match=r"Provence has no setting 'top_n' \(ragpress's name for 'top_n' is 'top_k'\); its settings are .*threshold"):
        ProvenceCompressor(top_n=3)  # a TypeError, as for any unknown keyword argument
    with pytest.raises(ValueError, match="setting 'threshold' must be float"):
        ProvenceCompressor(threshold="high")
    docs = [LCDocument(page_content=t) for t in ("The with statement calls __exit__.", "Loops repeat.", "Names are global.")]
    packed = BudgetPackerCompressor(budget=12, tokenizer=tiny_lm_path).compress_documents(docs, "with")
    assert packed == RagpressDocumentCompressor(BudgetPacker(budget=12, tokenizer=tiny_lm_path)).compress_documents(docs, "with")


def test_langchains_own_vector_store_feeds_a_ragpress_compressor(first_sentence):
    texts = ["The with statement wraps a block. It calls __exit__.", "A for loop repeats. Its else runs without break."]
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents([LCDocument(page_content=t, metadata={"source": f"s{i}"}) for i, t in enumerate(texts)])
    found = store.as_retriever(search_kwargs={"k": 2}).invoke("with")
    out = RagpressDocumentCompressor(first_sentence).compress_documents(found, "with")
    assert sorted(d.page_content for d in out) == ["A for loop repeats.", "The with statement wraps a block."]
    for piece, source in zip(out, found):
        assert piece.metadata["source"] == source.metadata["source"] and source.page_content.startswith(piece.page_content)
