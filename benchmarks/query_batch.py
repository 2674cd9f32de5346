"""Queries per second: ``Pipeline.run_batch`` over N queries against N calls of ``Pipeline.run``.

The demo pipeline (:func:`ragpress.demo.pipeline.demo_pipeline`: dense + BM25 retrieval fused by rank,
Provence pruning, SmolLM2-135M answering greedily) over the Python language reference, with the
bundled models. Both sides run after the same warm-up (:func:`~ragpress.demo.pipeline.load_models`
plus one batch of a few queries, so model loading and first-call costs fall on neither side), the
one-at-a-time side first. The answers must come out the same: the script compares every answer and
every compressed context, prints how many agree and exits non-zero when one differs (``--allow-diff``
reports instead; batched greedy decoding equals one-at-a-time decoding only up to float rounding,
which bf16 on a GPU can tip).

    python -m benchmarks.query_batch [--queries 64] [--max-new-tokens 48] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pydoc_data.topics import topics

import torch

from benchmarks._common import sync
from ragpress.core.bundled import cache_dir
from ragpress.demo.pipeline import demo_pipeline, load_models, python_reference
from ragpress.demo.questions import MORE_QUESTIONS


def questions(n: int) -> list[str]:
    """The demo's keyed questions, then one templated question per reference topic, ``n`` in all."""
    more = [f"What does the Python reference say about {topic.replace('-', ' ')}?" for topic in sorted(topics)]
    out = (list(MORE_QUESTIONS) + more)[:n]
    if len(out) < n:
        raise SystemExit(f"Only {len(out)} questions available; ask for at most that many.")
    return out


def same_context(a, b) -> bool:
    """The same kept spans, in the same order, with scores equal to float tolerance (a batch pads the
    encoder's input differently, which moves the last bits of a rerank score)."""
    spans = lambda c: [(p.doc_id, p.start, p.end) for p in c.pieces]  # noqa: E731
    return spans(a) == spans(b) and all(abs(x.score - y.score) <= 1e-4 for x, y in zip(a.pieces, b.pieces))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--out", help="write the numbers as JSON here")
    parser.add_argument("--allow-diff", action="store_true", help="report differing answers instead of failing")
    args = parser.parse_args(argv)

    rag = demo_pipeline(max_new_tokens=args.max_new_tokens)
    started = time.perf_counter()
    rag.index(python_reference(), cache=cache_dir() / "demo-index")
    index_s = time.perf_counter() - started
    print(f"indexed in {index_s:.1f} s", flush=True)
    load_s = load_models(rag)
    print(f"models loaded in {load_s:.1f} s", flush=True)
    queries = questions(args.queries)
    generator = rag.nodes["answer"].stage
    device = generator.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rag.run_batch(queries[:4])  # first-call costs of batched shapes (allocator, kernel choice), paid by neither side
    sync(device)

    started = time.perf_counter()
    one_by_one = [rag.run(q) for q in queries]
    sync(device)
    single_s = time.perf_counter() - started
    print(f"{len(queries)} calls of run: {single_s:.1f} s", flush=True)
    started = time.perf_counter()
    batched = rag.run_batch(queries)
    sync(device)
    batch_s = time.perf_counter() - started

    same_answers = sum(a.output.text == b.output.text for a, b in zip(one_by_one, batched))
    same_contexts = sum(same_context(a.outputs["compress"], b.outputs["compress"]) for a, b in zip(one_by_one, batched))
    stages = {t.name: round(t.seconds * len(queries), 3) for t in batched[0].trace}
    numbers = {
        "queries": len(queries), "max_new_tokens": args.max_new_tokens, "device": str(device),
        "index_s": round(index_s, 1), "load_s": round(load_s, 1),
        "run_s": round(single_s, 2), "run_batch_s": round(batch_s, 2),
        "run_qps": round(len(queries) / single_s, 2), "run_batch_qps": round(len(queries) / batch_s, 2),
        "speedup": round(single_s / batch_s, 2), "same_answers": same_answers, "same_contexts": same_contexts,
        "batch_stage_s": stages, "loads_in_timed_batch": [load.name for load in batched[0].loads],
    }
    print(json.dumps(numbers, indent=1))
    print(f"run_batch: {numbers['run_batch_qps']} queries/s; run one at a time: {numbers['run_qps']} queries/s; "
          f"ratio {numbers['speedup']}x; same answers {same_answers}/{len(queries)}, same contexts {same_contexts}/{len(queries)}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(numbers | {"answers": [[a.output.text, b.output.text] for a, b in zip(one_by_one, batched)]}, f, indent=1)
    if (same_answers < len(queries) or same_contexts < len(queries)) and not args.allow_diff:
        for a, b in zip(one_by_one, batched):
            if a.output.text != b.output.text:
                print(f"DIFFERENT ANSWER to {a.query!r}:\n  run:       {a.output.text!r}\n  run_batch: {b.output.text!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
