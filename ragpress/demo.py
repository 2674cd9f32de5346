"""The demo: retrieval-augmented answers over the Python language reference that ships with
Python (``pydoc_data.topics``), with the bundled SmolLM2-135M and MiniLM models."""

from __future__ import annotations

import sys
import time
from pydoc_data.topics import topics

from ragpress.chunkers.sentence import SentenceChunker
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.core.bundled import cache_dir
from ragpress.core.types import Document, check_provenance
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.pipelines.graph import Pipeline
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.retrievers.dense import DenseRetriever
from ragpress.retrievers.fusion import ReciprocalRankFusion

QUESTIONS = (
    "What does the with statement call when the block is exited?",
    "When does the else clause of a for loop run?",
    "What does the global statement do?",
)

# More questions over the same corpus, for benchmarks that time many queries.
MORE_QUESTIONS = QUESTIONS + (
    "How are keyword arguments matched to parameters in a call?",
    "What happens when an exception is raised inside a finally clause?",
    "How does the import statement find a module?",
    "What is the difference between is and ==?",
    "What does the yield expression do in a function?",
)


def python_reference() -> list[Document]:
    """The Python language reference, one document per topic (79 topics, about 465,000 characters)."""
    return [Document(text, id=topic, metadata={"source": "pydoc_data.topics"}) for topic, text in topics.items()]


def demo_pipeline(top_k: int = 8, budget: int = 384, max_new_tokens: int = 96) -> Pipeline:
    """Dense and BM25 retrieval fused by reciprocal rank, packed into a token budget, answered locally."""
    rag = Pipeline(chunker=SentenceChunker(unit="paragraph", max_tokens=200))
    rag.add("dense", DenseRetriever(top_k=top_k)).add("bm25", BM25Retriever(top_k=top_k))
    rag.add("fuse", ReciprocalRankFusion(top_k=top_k), after=["dense", "bm25"])
    rag.add("pack", BudgetPacker(budget=budget), after="fuse")
    rag.add("answer", TransformersGenerator(max_new_tokens=max_new_tokens, repetition_penalty=1.2), after="pack")
    return rag


def run_demo(
    questions: tuple[str, ...] = QUESTIONS, top_k: int = 8, budget: int = 384, max_new_tokens: int = 96, out=sys.stdout
) -> list:
    say = lambda *parts: print(*parts, file=out, flush=True)  # noqa: E731
    documents = python_reference()
    say(f"Corpus: the Python language reference (pydoc_data.topics), {len(documents)} topics, "
        f"{sum(len(d.text) for d in documents):,} characters.")
    rag = demo_pipeline(top_k, budget, max_new_tokens)
    say(repr(rag))
    start = time.perf_counter()
    chunks = rag.index(documents, cache=cache_dir() / "demo-index")
    say(f"Indexed {len(chunks)} chunks in {time.perf_counter() - start:.1f} s "
        f"(the first run converts the bundled models and embeds the corpus; later runs load both from {cache_dir()}).")
    results = rag.run_batch(list(questions))
    for result in results:
        answer = result.output
        check_provenance(answer.sources, rag.documents)
        say(f"\nQ: {result.query}\nA: {answer.text}")
        say(f"Sources ({len(answer.sources)} spans, offsets checked against the source text):")
        for i, piece in enumerate(answer.sources, 1):
            preview = " ".join(piece.text.split())[:90]
            say(f"  [{i}] {piece.doc_id}[{piece.start}:{piece.end}] {preview}…")
        context = answer.context
        say(f"Tokens: {context.tokens_before} retrieved, {context.tokens_after} kept, "
            f"{context.tokens_saved} saved ({context.ratio:.2f}x).")
        say(result.table())
    return results
