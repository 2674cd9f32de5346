"""The demo's corpus and pipelines: the Python language reference, retrieved by dense and BM25
search fused by rank, pruned to the sentences that answer the question, answered by SmolLM2-135M."""

from __future__ import annotations

import time
from pydoc_data.topics import topics

from ragpress.chunkers.sentence import SentenceChunker
from ragpress.compressors.base import Compressor
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.compressors.provence import Provence
from ragpress.core.loaders import load_causal_lm
from ragpress.core.types import Document
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.pipelines.graph import Pipeline
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.retrievers.dense import DenseRetriever
from ragpress.retrievers.fusion import ReciprocalRankFusion

COMPRESSORS = ("provence", "budget")
EVERYTHING = 10**9  # a budget no retrieved text reaches: BudgetPacker then keeps every chunk
# Provence's keep threshold: measured on the keyed questions (benchmarks/demo_candidates.py, RESULTS.md)
THRESHOLD = 0.5


def python_reference() -> list[Document]:
    """The Python language reference, one document per topic (79 topics, about 465,000 characters)."""
    return [Document(text, id=topic, metadata={"source": "pydoc_data.topics"}) for topic, text in topics.items()]


def compressor(name: str = "provence", budget: int = 384, dtype: str | None = None) -> Compressor:
    """The demo's compressor: ``provence`` (sentence pruning with the shipped checkpoint, best chunk
    first, at :data:`THRESHOLD`, its encoder in ``dtype``) or ``budget`` (whole chunks, best first, while
    they fit ``budget`` tokens)."""
    if name == "provence":
        return Provence(threshold=THRESHOLD, rerank=True, dtype=dtype)
    if name == "budget":
        return BudgetPacker(budget=budget)
    raise ValueError(f"Unknown demo compressor {name!r}; choose one of {', '.join(COMPRESSORS)}.")


def demo_pipeline(top_k: int = 8, budget: int = 384, max_new_tokens: int = 48, compress: str | Compressor = "provence",
                  dtype: str | None = None) -> Pipeline:
    """Dense and BM25 retrieval fused by reciprocal rank, compressed (``compress``: a name for
    :func:`compressor`, or any compressor), answered locally. ``dtype`` sets every model's precision
    (the embedder, Provence, the generator; None: each stage's default, bfloat16 for Provence and the
    generator on a GPU)."""
    rag = Pipeline(chunker=SentenceChunker(unit="paragraph", max_tokens=200))
    rag.add("dense", DenseRetriever(top_k=top_k, dtype=dtype)).add("bm25", BM25Retriever(top_k=top_k))
    rag.add("fuse", ReciprocalRankFusion(top_k=top_k), after=["dense", "bm25"])
    rag.add("compress", compress if isinstance(compress, Compressor) else compressor(compress, budget, dtype), after="fuse")
    # No repetition penalty: it counts the prompt too, so it pushes the model away from the words of its sources.
    rag.add("answer", TransformersGenerator(max_new_tokens=max_new_tokens, dtype=dtype), after="compress")
    return rag


def uncompressed(rag: Pipeline) -> Pipeline:
    """``rag`` with every retrieved chunk passed whole to the generator: the same retrieval and
    generator stages (shared, so nothing is indexed or loaded twice), no compression."""
    full = Pipeline(chunker=rag.chunker)
    for name, node in rag.nodes.items():
        stage = BudgetPacker(budget=EVERYTHING) if name == "compress" else node.stage
        full.add(name, stage, after=node.after)
    full.documents = rag.documents
    return full


def load_models(rag: Pipeline, query: str = "warm-up") -> float:
    """Load every model ``rag`` uses (embedder, Provence, tokenizers, spaCy, the generator's LM) and
    return the seconds it took, so that the per-stage times of the questions after it measure the
    questions' own work, not one-off loading: runs every stage before the generator once on ``query``,
    loads the generator's model and generates two tokens with it."""
    start = time.perf_counter()
    head = Pipeline(chunker=rag.chunker)
    for name, node in rag.nodes.items():
        if name != "answer":
            head.add(name, node.stage, after=node.after)
    head.run(query)
    generator = rag.nodes["answer"].stage
    lm = load_causal_lm(generator.model, generator.device, generator.dtype)
    # the first generate call pays one-off costs (allocation, kernel choice): made here with two tokens,
    # not charged to the first question
    lm.generate(lm.chat_ids([{"role": "user", "content": query}]), max_new_tokens=2)
    return time.perf_counter() - start
