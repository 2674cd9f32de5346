"""How far precision alone moves margin sampling's boundaries, next to how far batching moves them:
the official code (one prompt at a time) in float32 and in bfloat16, and ragpress batched in each,
on the same documents and model (SmolLM2-135M-Instruct), boundary F1 between each pair::

    python -m benchmarks.margin_precision --inputs inputs.json.gz --official-mc MC/tools [--documents 8]

It reads the agreement target of ``benchmarks.batch_throughput`` (F1 >= 0.95 against the official
in the same dtype): if the official code in bfloat16 against itself in float32 lands far below
0.95, a bfloat16 comparison asks a batched run to reproduce one rounding of the official's among
many. Documents are the first ``--documents`` of the inputs under ``--max-chars`` characters (a
CPU run; the GPU benchmark takes all). Inputs: ``python -m benchmarks.batch_inputs FILE``.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from benchmarks._common import timed
from benchmarks.meta_chunking import official_margin_ends, pooled_f1, spans_of
from ragpress.chunkers.meta_chunking import MarginSamplingChunker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--official-mc", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=8)
    parser.add_argument("--max-chars", type=int, default=5000)
    args = parser.parse_args()
    docs = [d for d in json.load(gzip.open(args.inputs, "rt"))["documents"] if len(" ".join(d)) <= args.max_chars][: args.documents]
    texts, spans = map(list, zip(*(spans_of(s, " ") for s in docs)))
    ends = {}
    for dtype in ("float32", "bfloat16"):
        chunker = MarginSamplingChunker(dtype=dtype)
        lm = chunker.lm()
        seconds, ends[f"official {dtype}"] = timed(official_margin_ends, args.official_mc, docs, lm)
        print(f"official {dtype}: {seconds:.1f} s", flush=True)
        seconds, ours = timed(chunker.meta_chunk_ends, texts, spans)
        ends[f"ragpress {dtype}"] = [e[:-1] for e in ours]
        print(f"ragpress {dtype}: {seconds:.1f} s", flush=True)
    pairs = [("official bfloat16", "official float32", "precision alone, the official code"),
             ("ragpress bfloat16", "ragpress float32", "precision alone, ragpress batched"),
             ("ragpress float32", "official float32", "batching, float32"),
             ("ragpress bfloat16", "official bfloat16", "batching, bfloat16")]
    print(f"{len(docs)} documents, {sum(map(len, docs))} sentences; boundary F1 pooled over documents:")
    for a, b, what in pairs:
        print(f"  {a} vs {b} ({what}): {pooled_f1(ends[a], ends[b]):.3f}")


if __name__ == "__main__":
    main()
