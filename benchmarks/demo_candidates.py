"""Which pipeline should ``ragpress demo`` run? Candidate compressors between the demo's retrieval
and its generator, scored on the demo's keyed questions over the Python language reference.

    python -m benchmarks.demo_candidates [--candidates provence-rerank,full,...] [--max-new-tokens 64]

Every candidate shares the demo's retrieval (dense + BM25, fused, top 8) and generator (SmolLM2-135M,
greedy); only the compressor differs. Per candidate: which questions it answers right (an answer is
right when it says a key term of the reference: :class:`ragpress.demo.Question`), whether the passage
that answers survived compression, the mean tokens retrieved and kept, and the time of each stage over
all questions (models loaded before timing). Prints one JSON line per candidate, then a table.
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks._common import print_table
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.compressors.provence import Provence
from ragpress.core.bundled import cache_dir
from ragpress.demo import KEYED, demo_pipeline, load_models, python_reference
from ragpress.demo.pipeline import EVERYTHING

CANDIDATES = {  # name: (compressor, the generator's repetition_penalty)
    "budget-384": lambda: (BudgetPacker(budget=384), 1.2),
    "budget-384-rp1": lambda: (BudgetPacker(budget=384), 1.0),
    "full-rp1": lambda: (BudgetPacker(budget=EVERYTHING), 1.0),
    "provence-rerank": lambda: (Provence(rerank=True), 1.2),
    "provence-rerank-rp1": lambda: (Provence(rerank=True), 1.0),
    "provence-0.5-rerank": lambda: (Provence(threshold=0.5, rerank=True), 1.2),
    "provence-0.5-rerank-rp1": lambda: (Provence(threshold=0.5, rerank=True), 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--questions", type=int, default=len(KEYED))
    args = parser.parse_args()
    documents, rows, keyed = python_reference(), [], KEYED[: args.questions]
    for name in args.candidates.split(","):
        compress, penalty = CANDIDATES[name]()
        rag = demo_pipeline(max_new_tokens=args.max_new_tokens, compress=compress)
        rag.nodes["answer"].stage.repetition_penalty = penalty
        rag.index(documents, cache=cache_dir() / "demo-index")
        load_s = load_models(rag)
        start = time.perf_counter()
        results = [rag.run(q.text) for q in keyed]  # one at a time, as the demo runs them
        seconds = time.perf_counter() - start
        right = [q.is_answered_by(r.output.text) for q, r in zip(keyed, results)]
        found = [any(p.doc_id == q.topic for p in r.output.context.pieces) for q, r in zip(keyed, results)]
        contexts = [r.output.context for r in results]
        stages = {t.name: round(sum(r.trace[i].seconds for r in results), 2) for i, t in enumerate(results[0].trace)}
        line = {"candidate": name, "right": sum(right), "of": len(keyed), "per_question": right, "topic_kept": found,
                "tokens_retrieved": round(sum(c.tokens_before for c in contexts) / len(contexts)),
                "tokens_kept": round(sum(c.tokens_after for c in contexts) / len(contexts)),
                "load_s": round(load_s, 1), "questions_s": round(seconds, 1), "stage_s": stages,
                "answers": [r.output.text for r in results]}
        print(json.dumps(line), flush=True)
        rows.append([name, f"{sum(right)}/{len(keyed)}", f"{sum(right[:3])}/3", f"{sum(found)}/{len(keyed)}",
                     line["tokens_retrieved"], line["tokens_kept"], f"{seconds / len(keyed):.1f}"])
    print_table(["candidate", "right", "right (defaults)", "answer topic kept", "tokens retrieved", "tokens kept", "s / question"], rows)


if __name__ == "__main__":
    main()
