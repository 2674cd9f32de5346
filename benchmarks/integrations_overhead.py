"""What the LlamaIndex and LangChain adapters cost on top of calling ragpress stages directly.

    python -m benchmarks.integrations_overhead [--queries N] [--rounds R]

Indexes the Python language reference (79 topics) with dense and BM25 retrievers, then times the
same retrieval (k=20) and the same budget packing (BudgetPacker, 384 tokens) called directly,
through the LlamaIndex adapters and through the LangChain adapters, and prints each adapter's
time as a ratio of the direct call. Rounds interleave the three ways and each time is the median
over rounds, so a busy machine hurts them alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import torch
from llama_index.core.schema import QueryBundle

from benchmarks._common import timed
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.demo import MORE_QUESTIONS, python_reference
from ragpress.integrations import langchain as lc
from ragpress.integrations import llama_index as li
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.retrievers.dense import DenseRetriever


def seconds(fn, queries) -> float:
    """Mean wall time of ``fn`` per query."""
    return timed(lambda: [fn(query) for query in queries])[0] / len(queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    queries = list(MORE_QUESTIONS * 4)[: args.queries]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")

    documents = python_reference()
    chunks = SentenceChunker(unit="paragraph", max_tokens=200).run(documents)
    nodes = [li.chunk_to_node(c) for c in chunks]
    docs = [lc.chunk_to_document(c) for c in chunks]
    print(f"corpus: {len(documents)} documents, {len(chunks)} chunks; {len(queries)} queries x {args.rounds} rounds")

    packer = BudgetPacker(budget=384)
    rows = []
    for name, make in (("dense", lambda: DenseRetriever(top_k=20)), ("bm25", lambda: BM25Retriever(top_k=20))):
        direct = make()
        direct.index(chunks)
        llama = li.RagpressRetriever(make(), nodes=nodes)
        chain = lc.RagpressRetriever(make(), documents=docs)
        hits = {q: direct.run(q) for q in queries}
        ways = {
            f"{name} retrieve": (direct.run, llama.retrieve, chain.invoke),
        }
        if name == "dense":  # packing does not depend on the retriever: time it once
            llama_hits = {q: llama.retrieve(q) for q in queries}
            chain_hits = {q: chain.invoke(q) for q in queries}
            post, comp = li.RagpressNodePostprocessor(packer), lc.RagpressDocumentCompressor(packer)
            ways["BudgetPacker(384)"] = (
                lambda q: packer.run(q, hits[q]),
                lambda q: post.postprocess_nodes(llama_hits[q], QueryBundle(q)),
                lambda q: comp.compress_documents(chain_hits[q], q),
            )
        for label, fns in ways.items():
            for fn in fns:  # warm up: models, tokenizers, caches
                fn(queries[0])
            times = [[seconds(fn, queries) for fn in fns] for _ in range(args.rounds)]
            direct_s, llama_s, chain_s = (statistics.median(t[i] for t in times) for i in range(3))
            rows.append((label, direct_s, llama_s, chain_s))

    print(f"\n{'per query':20} {'direct ms':>10} {'LlamaIndex ms':>14} {'ratio':>6} {'LangChain ms':>13} {'ratio':>6}")
    for label, direct_s, llama_s, chain_s in rows:
        print(
            f"{label:20} {direct_s * 1e3:10.2f} {llama_s * 1e3:14.2f} {llama_s / direct_s:6.2f}"
            f" {chain_s * 1e3:13.2f} {chain_s / direct_s:6.2f}"
        )


if __name__ == "__main__":
    main()
