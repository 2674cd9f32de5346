"""Retrieval over the context cut into windows, then BudgetPacker at ``tokens / ratio``: dense
(MiniLM) and BM25 top-k, LATTICE's LLM-guided tree search, and dense candidates reranked by REBEL.
The index is built once per context (``prepare``); retrieval and packing run per question."""

from __future__ import annotations

from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.eval.methods.base import Approach, Method, Prepared, Reply, generate, register_method, windows

CHUNK = 128  # tokens a retrieved window holds (MiniLM reads 256 word pieces)


class Retrieval(Approach):
    reads_in_prepare = True  # the embedder (dense) or the tree's summariser (LATTICE); BM25 only counts words

    def retriever(self, chunks):
        raise NotImplementedError

    def prepare(self, prepared: Prepared) -> Prepared:
        chunks = windows(prepared, self.setup, min(CHUNK, self.budget(prepared.tokens) // 4))
        retriever = self.retriever(chunks)
        retriever.index(chunks)
        prepared.state = retriever
        return prepared

    def ranked(self, prepared: Prepared, question: str):
        return prepared.state.run(question)

    def respond(self, prepared: Prepared, question: str) -> Reply:
        packer = BudgetPacker(budget=self.budget(prepared.tokens), order="source", tokenizer=self.setup.model)
        return generate(self.setup, packer.run(question, self.ranked(prepared, question)))


class Dense(Retrieval):
    def retriever(self, chunks):
        from ragpress.retrievers.dense import DenseRetriever

        return DenseRetriever(top_k=len(chunks), device=self.setup.device)


class BM25(Retrieval):
    reads_in_prepare = False

    def retriever(self, chunks):
        from ragpress.retrievers.bm25 import BM25Retriever

        return BM25Retriever(top_k=len(chunks))


class Lattice(Retrieval):
    """LATTICE with short LLM outputs (no reasoning, 40-token scores, 20-word summaries), as
    benchmarks/retrieval_quality.py ran it with SmolLM2: the paper's settings assume a large LLM."""

    def retriever(self, chunks):
        from ragpress.retrievers.lattice import LatticeRetriever

        return LatticeRetriever(
            model=self.setup.model, top_k=len(chunks), reasoning=False, leaf_calibration=3, candidate_chars=120,
            score_max_new_tokens=40, summary_words=20, summary_max_new_tokens=20, max_iterations=3, device=self.setup.device,
        )


class Rebel(Dense):
    """Dense candidates (twice what the budget holds) reranked by REBEL (two-turn, no reasoning)."""

    def ranked(self, prepared: Prepared, question: str):
        from ragpress.retrievers.rebel import RebelReranker

        hits = prepared.state.run(question)[: 2 * max(1, self.budget(prepared.tokens) // CHUNK)]
        reranker = RebelReranker(model=self.setup.model, reasoning=False, max_new_tokens=40, criteria_max_new_tokens=48, device=self.setup.device)
        return reranker.run(question, hits)


for method in (
    Method("dense", Dense, "retrieval", note=f"MiniLM top-k of {CHUNK}-token windows + BudgetPacker"),
    Method("bm25", BM25, "retrieval", note=f"BM25 top-k of {CHUNK}-token windows + BudgetPacker"),
    Method("lattice", Lattice, "retrieval", note="LATTICE tree search (LLM = the answering model) + BudgetPacker"),
    Method("rebel", Rebel, "retrieval", note="dense candidates reranked by REBEL (LLM = the answering model) + BudgetPacker"),
):
    register_method(method)
