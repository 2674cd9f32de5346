"""Time to first token and peak GPU memory: GemFilter against a full prefill, side by side in one run.

The model is LLaMA-3.1-8B-shaped (32 layers, hidden 4096, GQA 32/8, vocab 128256, llama3 RoPE) with
random bf16 weights built from a LlamaConfig (no download); every method uses the same attention
kernel (transformers' sdpa, so PyTorch's fused causal kernel). The paper's efficiency section (Sec. 4)
compares the same two quantities on the real model.

  full:          model(prompt, use_cache=True, logits_to_keep=1) -> first token (plain transformers)
  full+chunks:   the same, inside chunked_mlp(model, --mlp-chunk): every layer's MLP runs on chunks of
                 tokens, the memory saving GemFilter's first pass uses, given to the full prefill too
  GemFilter:     layers 0..12 (MLP in chunks, no KV cache, no logits) + layer 13's q/k on the prompt
                 -> top-1024 tokens -> model(selected, use_cache=True, logits_to_keep=1) -> first token

Per length the three run interleaved (full, full+chunks, GemFilter, full, ...) ``--repeats`` times
after one warm-up of each at 4096 tokens; medians and the min-max spread are printed, and the peak
is ``torch.cuda.max_memory_allocated`` (weights included), reset before every run.

    python -m benchmarks.gemfilter_gpu                      # H100/H200
    python -m benchmarks.gemfilter_gpu --tiny --lengths 512 1024 --k 64 --mlp-chunk 100  # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

from benchmarks._common import llama_8b_config, peak_gib, print_table, random_model, reset_peak, timed
from ragpress.compressors.gemfilter import filter_layer_index, select_tokens
from ragpress.core.attention import chunked_mlp, last_row_logits

METHODS = ("full", "full+chunks", "GemFilter")


@torch.inference_mode()
def full_prefill(model, ids: torch.Tensor, mlp_chunk: int | None = None) -> int:
    with chunked_mlp(model, mlp_chunk):
        return int(model(input_ids=ids, use_cache=True, logits_to_keep=1).logits[0, -1].argmax())


@torch.inference_mode()
def gemfilter(model, ids: torch.Tensor, layer: int, k: int, mlp_chunk: int | None) -> int:
    selected, _ = select_tokens(last_row_logits(model, ids, layer, mlp_chunk=mlp_chunk), k)
    return full_prefill(model, ids[:, selected.to(ids.device)])


def timed_peak(fn, device: torch.device) -> tuple[float, float]:
    """Wall time of one call (device synchronised) and its peak memory in GiB (the allocator's cache
    is not emptied between runs)."""
    reset_peak(device, release=False)
    seconds, _ = timed(fn, device=device)
    return seconds, peak_gib(device)


@torch.inference_mode()
def check_scores(model, layer: int, device: torch.device, n: int = 1024) -> float:
    """Max |softmax(our last-row logits) - eager attention's last row| at the filter layer."""
    ids = torch.randint(0, model.config.vocab_size, (1, n), device=device)
    ours = torch.softmax(last_row_logits(model, ids, layer), -1)[:, 0]
    model.set_attn_implementation("eager")
    try:
        eager = model(input_ids=ids, output_attentions=True).attentions[layer][0, :, -1].float()
    finally:
        model.set_attn_implementation("sdpa")
    return float((ours - eager).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16384, 32768, 65536, 131072])
    parser.add_argument("--repeats", type=int, nargs="+", default=[5], help="timed runs per method, one per length or one for all")
    parser.add_argument("--k", type=int, default=1024)
    parser.add_argument("--mlp-chunk", type=int, default=8192, help="tokens per MLP chunk (GemFilter's default)")
    parser.add_argument("--tiny", action="store_true", help="a tiny 32-layer config, for a CPU smoke test")
    args = parser.parse_args()
    repeats = args.repeats * len(args.lengths) if len(args.repeats) == 1 else args.repeats
    if len(repeats) != len(args.lengths):
        parser.error("give one --repeats or one per length")

    config = llama_8b_config(args.tiny)
    model, device, built = random_model(config)
    layer = filter_layer_index(config.num_hidden_layers)
    print(f"{built}; "
          f"filter layer {layer} of {config.num_hidden_layers}; k={args.k}; MLP chunk {args.mlp_chunk} tokens; sdpa", flush=True)
    print(f"score check at 1024 tokens, layer {layer}: max |softmax(ours) - eager| = {check_scores(model, layer, device):.2e}", flush=True)

    def runner(method: str, ids: torch.Tensor):
        if method == "GemFilter":
            return lambda: gemfilter(model, ids, layer, args.k, args.mlp_chunk)
        return lambda: full_prefill(model, ids, args.mlp_chunk if method == "full+chunks" else None)

    warm = torch.randint(0, config.vocab_size, (1, 4096), device=device)
    for method in METHODS:
        runner(method, warm)()
    rows = []
    for n, count in zip(args.lengths, repeats):
        ids = torch.randint(0, config.vocab_size, (1, n), device=device)
        runs = {m: [] for m in METHODS}
        peaks = {m: [] for m in METHODS}
        for _ in range(count):  # interleaved, so drift in clocks or temperature hits all three alike
            for method in METHODS:
                seconds, peak = timed_peak(runner(method, ids), device)
                runs[method].append(seconds)
                peaks[method].append(peak)
        peaks = {m: max(p) for m, p in peaks.items()}  # nan on CPU
        row = dict(tokens=n, runs=runs, peak_gib=peaks, median_s={m: statistics.median(t) for m, t in runs.items()})
        gem = runs["GemFilter"]
        for base in ("full", "full+chunks"):
            row[f"speedup_vs_{base}"] = row["median_s"][base] / row["median_s"]["GemFilter"]
            row[f"speedup_range_vs_{base}"] = (min(runs[base]) / max(gem), max(runs[base]) / min(gem))
            row[f"memory_saved_vs_{base}"] = 1 - peaks["GemFilter"] / peaks[base]
        rows.append(row)
        print(f"{n:>7} tokens, {count} runs: " + " | ".join(
            f"{m} {row['median_s'][m]:.3f}s [{min(runs[m]):.3f}-{max(runs[m]):.3f}] {peaks[m]:.1f}GiB" for m in METHODS), flush=True)
        del ids
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "gemfilter_gpu.json"), "w") as f:
            json.dump(dict(device=built, layer=layer, k=args.k, mlp_chunk=args.mlp_chunk, rows=rows), f, indent=1)
    print("\nTTFT: median of the runs, [min-max]; speed-up = median / median, [worst-best] from the extremes")
    print_table(["tokens", "runs", "full (s)", "full+chunks (s)", "GemFilter (s)", "speed-up vs full", "vs full+chunks"], [
        [r["tokens"], len(r["runs"]["full"]),
         *(f"{r['median_s'][m]:.3f} [{min(r['runs'][m]):.3f}-{max(r['runs'][m]):.3f}]" for m in METHODS),
         *(f"{r[f'speedup_vs_{b}']:.2f}x [{r[f'speedup_range_vs_{b}'][0]:.2f}-{r[f'speedup_range_vs_{b}'][1]:.2f}]" for b in METHODS[:2])]
        for r in rows], "r" * 7)
    print()
    print_table(["tokens", "full peak (GiB)", "full+chunks peak (GiB)", "GemFilter peak (GiB)", "saved vs full", "vs full+chunks"], [
        [r["tokens"], *(f"{r['peak_gib'][m]:.1f}" for m in METHODS), f"{r['memory_saved_vs_full']:.0%}", f"{r['memory_saved_vs_full+chunks']:.0%}"]
        for r in rows], "r" * 6)
    for r in rows:
        if r["tokens"] >= 65536:
            verdict = [f"vs {b}: {'met' if r[f'speedup_vs_{b}'] >= 2.4 and r[f'memory_saved_vs_{b}'] >= 0.30 else 'NOT met'}" for b in METHODS[:2]]
            print(f"target (>= 2.4x, >= 30% less memory) at {r['tokens']}: " + "; ".join(verdict))


if __name__ == "__main__":
    main()
