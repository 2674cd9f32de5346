"""Async that is async, streams that stream, and LangChain's splitter arguments."""

import asyncio
import dataclasses
import time

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_text_splitters")

from langchain_core.documents import Document as LCDocument  # noqa: E402

from ragpress import Chunk, Context, Document, Pipeline  # noqa: E402
from ragpress.chunkers.sentence import SentenceChunker  # noqa: E402
from ragpress.chunkers.token_window import TokenWindowChunker  # noqa: E402
from ragpress.compressors.base import Compressor  # noqa: E402
from ragpress.compressors.budget_packer import BudgetPacker  # noqa: E402
from ragpress.generators.transformers_lm import TransformersGenerator  # noqa: E402
from ragpress.integrations.langchain import (  # noqa: E402
    RagpressDocumentCompressor,
    RagpressRetriever,
    RagpressRunnable,
    RagpressTextSplitter,
)
from ragpress.retrievers.bm25 import BM25Retriever  # noqa: E402

NAP = 0.3


@dataclasses.dataclass
class SlowBM25(BM25Retriever):
    """BM25 that takes NAP seconds a query, as a model would."""

    def search(self, query: str, top_k: int) -> list[Chunk]:
        time.sleep(NAP)
        return super().search(query, top_k)


@dataclasses.dataclass
class SlowCompressor(Compressor):
    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        time.sleep(NAP)
        return Context(query, tuple(chunks))


def gathered(make) -> float:
    """Seconds for three of ``make()``'s coroutines run together."""
    async def run():
        start = time.perf_counter()
        await asyncio.gather(*(make() for _ in range(3)))
        return time.perf_counter() - start

    return asyncio.run(run())


@pytest.fixture(scope="module")
def splits(docs):
    return RagpressTextSplitter(TokenWindowChunker(size=6, overlap=2)).create_documents([d.text for d in docs])


def test_three_gathered_calls_overlap(splits, docs):
    retriever = RagpressRetriever(SlowBM25(top_k=2), documents=splits)
    assert gathered(lambda: retriever.ainvoke("with statement")) < 2 * NAP
    assert gathered(lambda: retriever.abatch(["with", "for", "global"])) < 3 * NAP
    assert len(asyncio.run(retriever.ainvoke("with statement", k=1))) == 1  # k reaches the async path too
    compressor = RagpressDocumentCompressor(SlowCompressor())
    assert gathered(lambda: compressor.acompress_documents(splits[:2], "with")) < 2 * NAP
    pipeline = Pipeline(chunker=TokenWindowChunker(size=6, overlap=2)).add("bm25", SlowBM25(top_k=2))
    pipeline.index(docs)
    runnable = RagpressRunnable(pipeline)
    assert gathered(lambda: runnable.ainvoke("with statement")) < 2 * NAP
    assert asyncio.run(runnable.abatch(["with", "for"])) == runnable.batch(["with", "for"])


def test_astream_yields_the_answer_piece_by_piece(tiny_lm_path, docs):
    pipeline = Pipeline(chunker=TokenWindowChunker(size=6, overlap=2)).add("bm25", BM25Retriever(top_k=2))
    pipeline.add("pack", BudgetPacker(budget=40, tokenizer=tiny_lm_path), after="bm25")
    pipeline.add("answer", TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=8), after="pack")
    pipeline.index(docs)
    runnable = RagpressRunnable(pipeline)

    async def collect():
        return [piece async for piece in runnable.astream("What does with call?")]

    pieces = asyncio.run(collect())
    assert len(pieces) > 1 and pieces == list(runnable.stream("What does with call?"))
    assert "".join(pieces).strip() == runnable.invoke("What does with call?")


def test_text_splitter_takes_langchains_arguments(docs):
    text = " ".join(d.text for d in docs) * 3
    default = RagpressTextSplitter(SentenceChunker()).split_text(text)
    small = RagpressTextSplitter(SentenceChunker(), chunk_size=12, chunk_overlap=0, keep_separator=True, strip_whitespace=True)
    assert small.chunker.max_tokens == 12 and len(small.split_text(text)) > len(default)
    assert all(c.token_count <= 12 for c in small.chunker.run([Document(text)]))
    located = RagpressTextSplitter(SentenceChunker(), add_start_index=True).create_documents([text], [{"source": "s"}])
    assert all(text[d.metadata["start_index"] :].startswith(d.page_content) and d.metadata["source"] == "s" for d in located)
    with pytest.raises(TypeError, match="TokenWindowChunker has no such setting.*size"):
        RagpressTextSplitter(TokenWindowChunker(), chunk_size=100)
    with pytest.raises(ValueError, match="chunk_overlap=20: ragpress chunkers do not overlap"):
        RagpressTextSplitter(SentenceChunker(), chunk_size=100, chunk_overlap=20)
    with pytest.raises(ValueError, match="length_function"):
        RagpressTextSplitter(SentenceChunker(), length_function=lambda t: len(t.split()))
    with pytest.raises(ValueError, match="strip_whitespace"):
        RagpressTextSplitter(SentenceChunker(), strip_whitespace=False)
    for build in (lambda: RagpressTextSplitter.from_tiktoken_encoder(chunk_size=100), lambda: RagpressTextSplitter.from_huggingface_tokenizer(None)):
        with pytest.raises(TypeError, match="pass it: RagpressTextSplitter\\(chunker\\)"):
            build()
    assert RagpressTextSplitter(SentenceChunker()).split_documents([LCDocument(page_content="  ")]) == []
