"""Time the baseline pipeline stage by stage on the Python language reference.

    python -m benchmarks.baseline_pipeline [--questions N] [--device cpu|cuda]

Prints indexing time (chunking, dense embedding, BM25) and, per stage, the mean time per query
over a batch of questions, with each stage's share of the total: where a query's time goes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import torch

from benchmarks._common import timed
from ragpress.demo import MORE_QUESTIONS, demo_pipeline, python_reference


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    questions = list(MORE_QUESTIONS * 4)[: args.questions]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, device {device}")

    rag = demo_pipeline(max_new_tokens=args.max_new_tokens, compress="budget")  # the BudgetPacker baseline
    documents = python_reference()
    chunk_s, chunks = timed(rag.chunker.run, documents)
    timings = {"chunk": chunk_s}
    for name in ("dense", "bm25"):
        timings[f"index {name}"], _ = timed(rag.nodes[name].stage.index, chunks)
    rag.documents = {d.id: d for d in documents}
    print(f"indexing {len(documents)} documents -> {len(chunks)} chunks:")
    for name, seconds in timings.items():
        print(f"  {name:<12} {seconds:8.2f} s")

    rag.run(questions[0])  # warm-up: loads the generator and compressor tokenizer
    results = rag.run_batch(questions)
    per_stage = {t.name: [] for t in results[0].trace}
    for result in results:
        for t in result.trace:
            per_stage[t.name].append(t.seconds)
    total = sum(statistics.mean(v) for v in per_stage.values())
    print(f"per query, mean over {len(questions)} questions (max_new_tokens={args.max_new_tokens}):")
    for name, values in per_stage.items():
        mean = statistics.mean(values)
        print(f"  {name:<8} {mean * 1000:9.1f} ms  {mean / total:6.1%}")
    saved = statistics.mean(r.output.context.ratio for r in results)
    print(f"  total    {total * 1000:9.1f} ms; retrieved/kept tokens ratio {saved:.2f}x")

    # the generator dominates: the same contexts answered one at a time and in one padded batch
    generator, contexts = rag.nodes["answer"].stage, [r.outputs["compress"] for r in results]
    one_s, single = timed(lambda: [generator.run(c) for c in contexts])
    batch_s, batched = timed(generator.run_batch, contexts)
    same = sum(a.text == b.text for a, b in zip(single, batched))
    print(f"generation of {len(contexts)} answers: one at a time {one_s:.2f} s, run_batch (batch_size {generator.batch_size}) "
          f"{batch_s:.2f} s: {one_s / batch_s:.2f}x faster; identical answers {same}/{len(contexts)}")


if __name__ == "__main__":
    main()
