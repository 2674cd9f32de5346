"""What a forward pass of a causal LM costs on this machine, and where Meta-Chunking's batched
forwards spend their time: the measurement behind :data:`ragpress.core.device.FORWARD_COST` (the
padding rule of :func:`~ragpress.core.device.padding_allowance`)::

    python -m benchmarks.forward_cost --inputs inputs.json.gz [--documents 100] [--dtypes float32 bfloat16]

For each dtype: the fixed cost (median wall time of a one-token forward), the token rate of a
32 x 512-token forward (FLOP/s counted as 2 x non-embedding parameters per token, as
``padding_allowance`` counts them), the padding allowance those two imply next to the one in use; then
PPL chunking and margin sampling over the documents with every forward's shape and synchronised time
recorded: forwards, padded tokens, seconds, and the five slowest forwards with their shapes.
Inputs: ``python -m benchmarks.batch_inputs FILE``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time

import torch

from benchmarks._common import sync, timed
from benchmarks.meta_chunking import spans_of
from ragpress.chunkers.meta_chunking import MarginSamplingChunker, PerplexityChunker
from ragpress.core.device import padding_allowance, step_parameters


@torch.inference_mode()
def calibrate(lm) -> dict:
    """Fixed cost and token rate of ``lm``'s forward on its device, and the allowance they imply."""
    one = torch.tensor([[lm.tokenizer.eos_token_id]], device=lm.device)
    block = torch.randint(100, 40000, (32, 512), device=lm.device)
    for _ in range(3):
        lm.model(input_ids=one), lm.model(input_ids=block, logits_to_keep=1)
    fixed = statistics.median(timed(lm.model, input_ids=one, device=lm.device)[0] for _ in range(20))
    rate_s = statistics.median(timed(lm.model, input_ids=block, logits_to_keep=1, device=lm.device)[0] for _ in range(5))
    params = step_parameters(lm.model.config)
    flops = 2 * params * block.numel() / rate_s
    return {"fixed_s": round(fixed, 5), "flop_rate": f"{flops:.3g}", "tokens_per_s": round(block.numel() / rate_s),
            "allowance_measured": int(fixed * flops / (2 * params)), "allowance_in_use": padding_allowance(lm.device, lm.model.config, lm.model.dtype)}


def forward_log(chunker, texts, spans) -> dict:
    """Run ``chunker`` over the texts with every forward's (rows, width, seconds) recorded."""
    lm = chunker.lm()
    model, log = lm.model, []
    real = model.forward

    def logged(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        sync(lm.device)
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            sync(lm.device)
            log.append((*ids.shape, time.perf_counter() - start))

    model.forward = logged
    try:
        total, _ = timed(chunker.meta_chunk_ends, texts, spans, device=lm.device)
    finally:
        del model.forward
    slow = sorted(log, key=lambda r: -r[2])[:5]
    return {"total_s": round(total, 3), "forwards": len(log), "forward_s": round(sum(r[2] for r in log), 3),
            "padded_tokens": sum(r[0] * r[1] for r in log), "slowest (rows, width, s)": [(r, w, round(s, 3)) for r, w, s in slow]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    docs = json.load(gzip.open(args.inputs, "rt"))["documents"][: args.documents]
    results = {}
    for dtype in args.dtypes:
        for name, chunker, sep in (("ppl", PerplexityChunker(dtype=dtype), ""), ("margin", MarginSamplingChunker(dtype=dtype), " ")):
            texts, spans = map(list, zip(*(spans_of(s, sep) for s in docs)))
            if name == "ppl":
                results[f"{dtype} calibration"] = calibrate(chunker.lm())
                print(dtype, "calibration", results[f"{dtype} calibration"], flush=True)
            chunker.meta_chunk_ends(texts[:4], spans[:4])  # warm-up
            results[f"{dtype} {name}"] = forward_log(chunker, texts, spans)
            print(dtype, name, results[f"{dtype} {name}"], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
