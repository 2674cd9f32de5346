"""Needle in a haystack (CPU): RetroLM's KV pages vs full attention vs text-chunk RAG at one budget.

Haystacks, needle and question as in benchmarks/gemfilter_niah.py (Paul Graham essays, the San
Francisco needle at a sentence boundary at each depth). The model is the bundled SmolLM2-135M-Instruct.
Three ways to answer, all greedy with the prompt ragpress generators build:

- full: the whole haystack as one source (TransformersGenerator);
- RetroLM: the haystack prefilled once into KV pages, the first page + local window + ``pages_kept``
  retrieved pages read at their original positions;
- RAG: 128-token text windows, DenseRetriever (MiniLM) + BudgetPacker + TransformersGenerator, with the
  packer's budget equal to RetroLM's context tokens.

An answer is correct when it names the sandwich or Dolores Park. "needle read" says whether the
needle's page / chunk was among those the model read.

    python -m benchmarks.retrolm_niah [--lengths 2048 4096] [--depths 0.1 0.5 0.9]
"""

from __future__ import annotations

import argparse

from tqdm import tqdm

from benchmarks._common import NEEDLE, QUESTION, haystack, print_table, timed
from ragpress.chunkers.token_window import TokenWindowChunker
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.core.types import Answer, Chunk, Context, Document
from ragpress.generators.retrolm import RetroLM
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.models import load_causal_lm
from ragpress.retrievers.dense import DenseRetriever


def correct(answer: Answer) -> bool:
    text = answer.text.lower()
    return "sandwich" in text or "dolores" in text


def reads_needle(answer: Answer, start: int) -> bool:
    return any(p.start <= start and start + len(NEEDLE) <= p.end for p in answer.sources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    parser.add_argument("--page-size", type=int, default=128)
    parser.add_argument("--pages-kept", type=int, default=6)
    parser.add_argument("--local-window", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    args = parser.parse_args()

    lm = load_causal_lm("smollm2-135m", device="cpu")
    retro = RetroLM(page_size=args.page_size, pages_kept=args.pages_kept, local_window=args.local_window, max_new_tokens=args.max_new_tokens, device="cpu")
    budget = (args.pages_kept + 1 + -(-args.local_window // args.page_size)) * args.page_size
    generator = TransformersGenerator(max_new_tokens=args.max_new_tokens, device="cpu")
    chunker = TokenWindowChunker(size=args.page_size, overlap=0, tokenizer="smollm2-135m")
    packer = BudgetPacker(budget=budget, order="source")

    def rag_answer(doc: Document) -> Answer:
        retriever = DenseRetriever(top_k=len(doc.text))
        retriever.index(chunker.chunk(doc))
        return generator.run(packer.run(QUESTION, retriever.run(QUESTION)))

    rows, seconds = [], {"full": 0.0, "RetroLM": 0.0, "RAG": 0.0}
    for n in args.lengths:
        for depth in tqdm(args.depths, desc=f"{n} tokens"):
            doc, start = haystack(lm.tokenizer, n, depth)
            whole = Context(query=QUESTION, pieces=(Chunk.of(doc, 0, len(doc.text)),))
            elapsed, full = timed(generator.run, whole)
            seconds["full"] += elapsed
            elapsed, paged = timed(retro.run, whole)
            seconds["RetroLM"] += elapsed
            elapsed, rag = timed(rag_answer, doc)
            seconds["RAG"] += elapsed
            rows.append((n, depth, full, paged, rag, start))
            tqdm.write(f"{n} {depth:.0%} full={full.text[:50]!r} retrolm={paged.text[:50]!r} rag={rag.text[:50]!r}")

    print(f"\nSmolLM2-135M-Instruct; RetroLM page_size={args.page_size}, pages_kept={args.pages_kept}, "
          f"local_window={args.local_window}; RAG budget = RetroLM context budget = {budget} tokens")
    yes = {True: "yes", False: "no"}
    print_table(["tokens", "depth", "full", "RetroLM", "RetroLM needle read", "RAG", "RAG needle read", "RetroLM context tokens", "RAG context tokens"], [
        [n, f"{depth:.0%}", yes[correct(full)], yes[correct(paged)], yes[reads_needle(paged, start)], yes[correct(rag)],
         yes[reads_needle(rag, start)], paged.context.tokens_after, rag.context.tokens_after]
        for n, depth, full, paged, rag, start in rows], "rrcccccrr")
    total = len(rows)
    for name, index in (("full", 2), ("RetroLM", 3), ("RAG", 4)):
        hits = sum(correct(row[index]) for row in rows)
        print(f"{name}: {hits}/{total} correct ({hits / total:.0%}), {seconds[name]:.0f} s")
    for name, index in (("RetroLM", 3), ("RAG", 4)):
        print(f"{name}: needle read in {sum(reads_needle(row[index], row[5]) for row in rows)}/{total}")


if __name__ == "__main__":
    main()
