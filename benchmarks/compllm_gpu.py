"""Time to first token and KV-cache size: full-context prefill against CompLLM 2x with uncached and
with cached segments, side by side in one run (CompLLM, arXiv:2509.19228, Sec. 4 efficiency: "up to
4x faster TTFT at long contexts and a 50% smaller KV cache").

The decoder is LLaMA-3.1-8B-shaped (32 layers, hidden 4096, GQA 32/8, vocab 128256, llama3 RoPE) with
random bf16 weights built from a config (no download), sdpa attention everywhere. The CompLLM encoder
is the same model with a rank-8 LoRA on every linear layer plus the linear layer (random: timing only).

  full:               decoder(context ids, use_cache) -> first token
  CompLLM uncached:   encode every 20-token segment (+10 EOS) in batches -> n/2 CEs -> decoder(CEs) -> first token
  CompLLM cached:     every segment found in the SegmentCache -> n/2 CEs -> decoder(CEs) -> first token

    python -m benchmarks.compllm_gpu                          # H100/H200
    python -m benchmarks.compllm_gpu --tiny --lengths 512 1024   # CPU smoke test
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics

import torch

from benchmarks._common import llama_8b_config, peak_gib, print_table, random_model, reset_peak, timed
from ragpress.compressors.compllm import PAPER_RATIO, PAPER_SEGMENT_TOKENS, CompLLMEncoder, concept_embeddings
from ragpress.compressors.segment_cache import SegmentCache
from ragpress.core.kv_cache import returned_cache


def kv_bytes(cache) -> int:
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


@torch.inference_mode()
def prefill(decoder, **inputs) -> tuple[int, int]:
    """First token and KV-cache bytes of one prefill."""
    out = decoder(**inputs, use_cache=True, logits_to_keep=1)
    return int(out.logits[0, -1].argmax()), kv_bytes(returned_cache(out))


def timed_runs(fn, device: torch.device, repeats: int) -> tuple[list[float], float, tuple]:
    """Wall times of ``repeats`` calls (the median drops a first call's allocator growth), peak GiB, last result."""
    reset_peak(device)
    times = []
    for _ in range(repeats):
        seconds, result = timed(fn, device=device)
        times.append(seconds)
    return times, peak_gib(device), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16384, 32768, 65536, 131072])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-segments", type=int, default=1024)
    parser.add_argument("--tiny", action="store_true", help="a tiny 32-layer config, for a CPU smoke test")
    args = parser.parse_args()

    config = llama_8b_config(args.tiny)
    model, device, built = random_model(config)
    encoder = CompLLMEncoder(model, PAPER_RATIO, eos_id=config.eos_token_id or 0).eval()
    cache = SegmentCache({"decoder": "llama-3.1-8b-shape-random", "ratio": str(PAPER_RATIO)})
    print(f"{built}; LLaMA-3.1-8B shape, sdpa; "
          f"ratio {PAPER_RATIO}, segments of {PAPER_SEGMENT_TOKENS} tokens, {args.batch_segments} segments per encoder batch", flush=True)

    def run(ids: torch.Tensor, texts: list[str], segments: list[list[int]], fresh: bool):
        if fresh:
            cache.clear()
        with encoder.decoding() as decoder:
            if texts is None:
                return prefill(decoder, input_ids=ids[None])
            calls = encoder.calls
            concepts = torch.cat(concept_embeddings(encoder, cache, texts, segments, args.batch_segments))
            return (*prefill(decoder, inputs_embeds=concepts[None]), encoder.calls - calls, len(concepts))

    def case(n: int):
        ids = torch.randint(0, config.vocab_size, (n,), device=device)
        segments = [ids[i : i + PAPER_SEGMENT_TOKENS].tolist() for i in range(0, n, PAPER_SEGMENT_TOKENS)]
        texts = [f"{n}:{i}:" + " ".join(map(str, s)) for i, s in enumerate(segments)]  # the segment's "text": a unique key
        return ids, texts, segments

    warm = case(4096)
    for fresh, texts in ((False, None), (True, warm[1]), (False, warm[1])):
        run(warm[0], texts, warm[2], fresh)
    rows = []
    for n in args.lengths:
        ids, texts, segments = case(n)
        full_t, full_mem, (_, full_kv) = timed_runs(functools.partial(run, ids, None, None, False), device, args.repeats)
        unc_t, unc_mem, (_, unc_kv, unc_calls, ces) = timed_runs(functools.partial(run, ids, texts, segments, True), device, args.repeats)
        hits = cache.hits
        hit_t, hit_mem, (*_, hit_calls, _) = timed_runs(functools.partial(run, ids, texts, segments, False), device, args.repeats)
        assert hit_calls == 0 and cache.hits - hits == args.repeats * len(segments), "cached runs must encode nothing"
        row = dict(tokens=n, segments=len(segments), concepts=ces, encoder_calls=unc_calls,
                   full_s=statistics.median(full_t), uncached_s=statistics.median(unc_t), cached_s=statistics.median(hit_t),
                   full_kv_gib=full_kv / 2**30, compllm_kv_gib=unc_kv / 2**30, full_peak_gib=full_mem, uncached_peak_gib=unc_mem,
                   cached_peak_gib=hit_mem, runs=dict(full=full_t, uncached=unc_t, cached=hit_t))
        rows.append(row)
        print(f"{n:>7} tokens: full {row['full_s']:.3f}s | CompLLM uncached {row['uncached_s']:.3f}s ({unc_calls} encoder calls "
              f"for {len(segments)} segments) | cached {row['cached_s']:.3f}s | KV {row['full_kv_gib']:.2f} -> {row['compllm_kv_gib']:.2f} GiB",
              flush=True)
        cache.clear()
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "compllm_gpu.json"), "w") as f:
            json.dump(dict(device=built, rows=rows), f, indent=1)
    print()
    print_table(["tokens", "full TTFT (s)", "CompLLM uncached (s)", "speed-up", "CompLLM cached (s)", "speed-up", "KV full (GiB)",
                 "KV CompLLM (GiB)", "KV saved", "encoder calls"], [
        [r["tokens"], f"{r['full_s']:.3f}", f"{r['uncached_s']:.3f}", f"{r['full_s'] / r['uncached_s']:.2f}x", f"{r['cached_s']:.3f}",
         f"{r['full_s'] / r['cached_s']:.2f}x", f"{r['full_kv_gib']:.2f}", f"{r['compllm_kv_gib']:.2f}",
         f"{1 - r['compllm_kv_gib'] / r['full_kv_gib']:.0%}", r["encoder_calls"]]
        for r in rows], "r" * 10)


if __name__ == "__main__":
    main()
