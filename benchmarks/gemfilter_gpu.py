"""Time to first token and peak GPU memory: GemFilter against a full prefill, side by side in one run.

The model is LLaMA-3.1-8B-shaped (32 layers, hidden 4096, GQA 32/8, vocab 128256, llama3 RoPE) with
random bf16 weights built from a LlamaConfig (no download); both methods use the same attention
kernel (transformers' sdpa, so PyTorch's fused causal kernel). The paper's efficiency section (Sec. 4) compares
the same two quantities on the real model.

  full prefill:  model(prompt, use_cache=True, logits_to_keep=1) -> first token
  GemFilter:     layers 0..12 + layer 13's q/k on the prompt -> top-1024 tokens ->
                 model(selected, use_cache=True, logits_to_keep=1) -> first token

    PYTHONPATH=. python benchmarks/gemfilter_gpu.py                      # H100/H200
    PYTHONPATH=. python benchmarks/gemfilter_gpu.py --tiny --lengths 512 1024   # CPU smoke test
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from ragpress.compressors.gemfilter import filter_layer_index, last_row_logits, select_tokens


def llama_8b_config(tiny: bool) -> LlamaConfig:
    shape = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8)
    if tiny:
        shape = dict(hidden_size=64, intermediate_size=224, num_hidden_layers=32, num_attention_heads=4, num_key_value_heads=1)
    return LlamaConfig(
        vocab_size=128256 if not tiny else 1024,
        max_position_embeddings=131072,
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
        rms_norm_eps=1e-5,
        attn_implementation="sdpa",
        **shape,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def full_prefill(model, ids: torch.Tensor) -> int:
    return int(model(input_ids=ids, use_cache=True, logits_to_keep=1).logits[0, -1].argmax())


@torch.inference_mode()
def gemfilter(model, ids: torch.Tensor, layer: int, k: int) -> int:
    selected, _ = select_tokens(last_row_logits(model, ids, layer), k)
    return full_prefill(model, ids[:, selected.to(ids.device)])


def measure(fn, device: torch.device, repeats: int) -> tuple[list[float], float]:
    """Wall times of ``repeats`` calls after one warm-up, and the peak memory (GiB) over them."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    fn()  # warm-up at this length (kernel choice, allocator growth)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return times, peak


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
    parser.add_argument("--k", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="a tiny 32-layer config, for a CPU smoke test")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = llama_8b_config(args.tiny)
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
    layer = filter_layer_index(config.num_hidden_layers)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"{name}; torch {torch.__version__}; {params:.2f}B params bf16 built in {time.perf_counter() - started:.0f}s; "
          f"filter layer {layer} of {config.num_hidden_layers}; k={args.k}; sdpa", flush=True)
    print(f"score check at 1024 tokens, layer {layer}: max |softmax(ours) - eager| = {check_scores(model, layer, device):.2e}", flush=True)

    warm = torch.randint(0, config.vocab_size, (1, 4096), device=device)
    full_prefill(model, warm), gemfilter(model, warm, layer, args.k)
    rows = []
    for n in args.lengths:
        ids = torch.randint(0, config.vocab_size, (1, n), device=device)
        full_t, full_mem = measure(lambda: full_prefill(model, ids), device, args.repeats)
        gem_t, gem_mem = measure(lambda: gemfilter(model, ids, layer, args.k), device, args.repeats)
        row = dict(tokens=n, full_s=statistics.median(full_t), gemfilter_s=statistics.median(gem_t), full_gib=full_mem,
                   gemfilter_gib=gem_mem, full_runs=full_t, gemfilter_runs=gem_t)
        row["speedup"] = row["full_s"] / row["gemfilter_s"]
        row["memory_saved"] = 1 - gem_mem / full_mem if device.type == "cuda" else float("nan")
        rows.append(row)
        print(f"{n:>7} tokens: full {row['full_s']:.3f}s {full_mem:.1f}GiB | GemFilter {row['gemfilter_s']:.3f}s "
              f"{gem_mem:.1f}GiB | {row['speedup']:.2f}x faster, {row['memory_saved']:.0%} less memory", flush=True)
        del ids
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "gemfilter_gpu.json"), "w") as f:
            json.dump(dict(device=name, layer=layer, k=args.k, rows=rows), f, indent=1)
    print("\n| tokens | full TTFT (s) | GemFilter TTFT (s) | speed-up | full peak (GiB) | GemFilter peak (GiB) | memory saved |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['tokens']} | {r['full_s']:.3f} | {r['gemfilter_s']:.3f} | {r['speedup']:.2f}x | {r['full_gib']:.1f} | "
              f"{r['gemfilter_gib']:.1f} | {r['memory_saved']:.0%} |")


if __name__ == "__main__":
    main()
