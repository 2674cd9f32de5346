"""Queries per second: ``Pipeline.run_batch`` over N queries against N calls of ``Pipeline.run``.

The demo pipeline (:func:`ragpress.demo.pipeline.demo_pipeline`: dense + BM25 retrieval fused by rank,
Provence pruning, SmolLM2-135M answering greedily) over the Python language reference, with the
bundled models. Both sides run after the same warm-up (:func:`~ragpress.demo.pipeline.load_models`
plus one batch of a few queries, so model loading and first-call costs fall on neither side), the
one-at-a-time side first. The answers must come out the same: the script compares every answer and
every compressed context, prints how many agree and, for each query that differs, the first stage
whose output differs (retrieval, fusion, compression or the answer), and exits non-zero when one
differs (``--allow-diff`` reports instead).

Every model (MiniLM, Provence, SmolLM2) runs in ``--dtype``, float32 by default on every device:
batched and one-at-a-time kernels sum in different orders, and in bfloat16 (the stages' GPU default)
that rounding tips greedy choices: on an H200 in bf16, 52/64 contexts and 29/64 answers agreed.
In float32 the two agree up to float32 rounding; ``--dtype bfloat16`` measures the GPU default.

    python -m benchmarks.query_batch [--queries 64] [--max-new-tokens 48] [--dtype float32] [--out results.json]
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
from ragpress.core.types import Answer, Chunk, Context
from ragpress.demo.pipeline import demo_pipeline, load_models, python_reference
from ragpress.demo.questions import MORE_QUESTIONS
from ragpress.pipelines.trace import Result


def questions(n: int) -> list[str]:
    """The demo's keyed questions, then one templated question per reference topic, ``n`` in all."""
    more = [f"What does the Python reference say about {topic.replace('-', ' ')}?" for topic in sorted(topics)]
    out = (list(MORE_QUESTIONS) + more)[:n]
    if len(out) < n:
        raise SystemExit(f"Only {len(out)} questions available; ask for at most that many.")
    return out


def same_chunks(a: list[Chunk], b: list[Chunk]) -> bool:
    """The same spans, in the same order, with scores equal to float tolerance (a batch pads an
    encoder's input differently, which moves the last bits of a score)."""
    spans = lambda chunks: [(c.doc_id, c.start, c.end) for c in chunks]  # noqa: E731
    return spans(a) == spans(b) and all((x.score is None) == (y.score is None) and (x.score is None or abs(x.score - y.score) <= 1e-4)
                                        for x, y in zip(a, b))


def same_output(a, b) -> bool:
    """Two outputs of one stage agree: chunk lists and contexts by :func:`same_chunks`, answers by text."""
    if isinstance(a, Context):
        return same_chunks(list(a.pieces), list(b.pieces))
    if isinstance(a, Answer):
        return a.text == b.text
    return same_chunks(a, b) if isinstance(a, list) else a == b


def first_difference(a: Result, b: Result) -> str | None:
    """The first stage, in pipeline order, whose output differs between two results of one query
    (None when none does): where a difference between run and run_batch starts."""
    return next((name for name in a.outputs if not same_output(a.outputs[name], b.outputs[name])), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--dtype", default="float32", help="every model's dtype (float32: batched and unbatched agree up to its rounding)")
    parser.add_argument("--out", help="write the numbers as JSON here")
    parser.add_argument("--allow-diff", action="store_true", help="report differing answers instead of failing")
    args = parser.parse_args(argv)

    rag = demo_pipeline(max_new_tokens=args.max_new_tokens, dtype=args.dtype)
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
    same_contexts = sum(same_output(a.outputs["compress"], b.outputs["compress"]) for a, b in zip(one_by_one, batched))
    first = {a.query: first_difference(a, b) for a, b in zip(one_by_one, batched)}
    first = {q: stage for q, stage in first.items() if stage}
    stages = {t.name: round(t.seconds * len(queries), 3) for t in batched[0].trace}
    numbers = {
        "queries": len(queries), "max_new_tokens": args.max_new_tokens, "device": str(device), "dtype": args.dtype,
        "index_s": round(index_s, 1), "load_s": round(load_s, 1),
        "run_s": round(single_s, 2), "run_batch_s": round(batch_s, 2),
        "run_qps": round(len(queries) / single_s, 2), "run_batch_qps": round(len(queries) / batch_s, 2),
        "speedup": round(single_s / batch_s, 2), "same_answers": same_answers, "same_contexts": same_contexts,
        "first_difference_at": {name: sum(s == name for s in first.values()) for name in rag.nodes if name in first.values()},
        "batch_stage_s": stages, "loads_in_timed_batch": [load.name for load in batched[0].loads],
    }
    print(json.dumps(numbers, indent=1))
    print(f"run_batch: {numbers['run_batch_qps']} queries/s; run one at a time: {numbers['run_qps']} queries/s; "
          f"ratio {numbers['speedup']}x; same answers {same_answers}/{len(queries)}, same contexts {same_contexts}/{len(queries)}")
    for a, b in zip(one_by_one, batched):
        if a.query in first:
            print(f"DIFFERENT from stage {first[a.query]!r} on, for {a.query!r}:\n  run:       {a.output.text!r}\n  run_batch: {b.output.text!r}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(numbers | {"first_difference": first, "answers": [[a.output.text, b.output.text] for a, b in zip(one_by_one, batched)]}, f, indent=1)
    return 1 if first and not args.allow_diff else 0


if __name__ == "__main__":
    sys.exit(main())
