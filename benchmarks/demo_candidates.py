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

CANDIDATES = {
    "budget-384": lambda: BudgetPacker(budget=384),
    "full": lambda: BudgetPacker(budget=EVERYTHING),
    "provence": lambda: Provence(),
    "provence-rerank": lambda: Provence(rerank=True),
    "provence-rerank-top3": lambda: Provence(rerank=True, top_k=3),
    "provence-0.5-rerank": lambda: Provence(threshold=0.5, rerank=True),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    documents, rows = python_reference(), []
    for name in args.candidates.split(","):
        rag = demo_pipeline(max_new_tokens=args.max_new_tokens, compress=CANDIDATES[name]())
        rag.index(documents, cache=cache_dir() / "demo-index")
        load_s = load_models(rag)
        start = time.perf_counter()
        results = [rag.run(q.text) for q in KEYED]  # one at a time, as the demo runs them
        seconds = time.perf_counter() - start
        right = [q.is_answered_by(r.output.text) for q, r in zip(KEYED, results)]
        found = [any(p.doc_id == q.topic for p in r.output.context.pieces) for q, r in zip(KEYED, results)]
        contexts = [r.output.context for r in results]
        stages = {t.name: round(sum(r.trace[i].seconds for r in results), 2) for i, t in enumerate(results[0].trace)}
        line = {"candidate": name, "right": sum(right), "of": len(KEYED), "per_question": right, "topic_kept": found,
                "tokens_retrieved": round(sum(c.tokens_before for c in contexts) / len(contexts)),
                "tokens_kept": round(sum(c.tokens_after for c in contexts) / len(contexts)),
                "load_s": round(load_s, 1), "questions_s": round(seconds, 1), "stage_s": stages,
                "answers": [r.output.text for r in results]}
        print(json.dumps(line), flush=True)
        rows.append([name, f"{sum(right)}/{len(KEYED)}", f"{sum(right[:3])}/3", f"{sum(found)}/{len(KEYED)}",
                     line["tokens_retrieved"], line["tokens_kept"], f"{seconds / len(KEYED):.1f}"])
    print_table(["candidate", "right", "right (defaults)", "answer topic kept", "tokens retrieved", "tokens kept", "s / question"], rows)


if __name__ == "__main__":
    main()
