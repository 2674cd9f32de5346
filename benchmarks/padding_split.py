"""Meta-Chunking (PPL and margin sampling) with and without the padding rule of
:func:`ragpress.core.device.length_batches` (a batch splits where padding costs more than a forward,
:func:`~ragpress.core.device.padding_allowance`), side by side in one run, same model and inputs,
with the boundaries compared::

    python -m benchmarks.padding_split --inputs inputs.json.gz [--documents 8] [--dtype float32]

Inputs: ``python -m benchmarks.batch_inputs FILE`` (the documents of ``benchmarks.batch_throughput``).
"""

from __future__ import annotations

import argparse
import gzip
import json

import ragpress.core.device as device
from benchmarks._common import timed
from benchmarks.meta_chunking import spans_of
from ragpress.chunkers.meta_chunking import MarginSamplingChunker, PerplexityChunker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--documents", type=int, default=8)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    docs = json.load(gzip.open(args.inputs, "rt"))["documents"][: args.documents]
    rule = device.padding_allowance
    for name, chunker, sep in (("PPL chunking", PerplexityChunker(dtype=args.dtype), ""), ("margin sampling", MarginSamplingChunker(dtype=args.dtype), " ")):
        texts, spans = map(list, zip(*(spans_of(s, sep) for s in docs)))
        lm = chunker.lm()
        seconds, ends = {}, {}
        try:
            for label, allowance in (("one padded batch", lambda *_: 10**9), ("padding rule", rule)):
                device.padding_allowance = allowance
                seconds[label], ends[label] = timed(chunker.meta_chunk_ends, texts, spans, device=lm.device)
                print(f"{name}, {len(docs)} documents, {label}: {seconds[label]:.1f} s", flush=True)
        finally:
            device.padding_allowance = rule
        same = ends["one padded batch"] == ends["padding rule"]
        print(f"{name}: {seconds['one padded batch'] / seconds['padding rule']:.2f}x with the rule, same boundaries: {same}", flush=True)


if __name__ == "__main__":
    main()
