"""Decode against the hardware limit (GPU), LLaMA-3.1-8B-shaped, random bf16: eager vs the static path.

In one run: the GPU's copy bandwidth (a large device-to-device copy, bytes read + written per second),
then per context length and batch the milliseconds per decoding step of

- full attention over the whole context: transformers' ``generate`` after a cache that already holds
  the context (random KV, so no prefill is spent on the timing), eagerly on a dynamic cache and on
  the fast path (:func:`ragpress.core.decode.continue_generate` on a static cache: compiled steps);
- RetroLM (batch 1): :meth:`PagedContext.stream_ids` over pages offloaded to CPU memory (the gap between
  two tokens reaching the host, as for the others), first page +
  local window + ``pages_kept`` pages read, re-selecting every ``reselect_every`` tokens, with
  ``decode="eager"`` (a dynamic cache rebuilt at each re-selection) and ``"static"`` (its own static
  cache, pages swapped in place, compiled steps);
- GemFilter's second pass: :meth:`CausalLM.generate_batch` (prefill included) over ``--gemfilter-budget``
  selected tokens, eager and fast.

The bound of a step is the bytes it must read (the weights but the input embedding, plus the KV of
every attended token of every sequence) over the measured copy bandwidth. A step's time is the median
gap between two new tokens reaching the streamer (the host waits for each token, as a user does);
the static path compiles its first steps on CUDA, which the median leaves out and the note's slowest step shows.
``greedy steps equal`` compares the eager and fast greedy tokens over the same cache. One end-to-end check
at the smallest length runs :meth:`CausalLM.generate` with prefill on both paths (time to first token).

    python -m benchmarks.decode_limit [--lengths 32768 65536 131072] [--batch 1 8] [--only full retrolm e2e gemfilter] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from types import SimpleNamespace

import torch
from transformers import DynamicCache, StaticCache
from transformers.generation.streamers import BaseStreamer

from benchmarks._common import llama_8b_config, print_table, random_model, sync
from ragpress.core.decode import continue_generate, static_length
from ragpress.generators.retrolm import PagedContext, RetroLMSettings
from ragpress.generators.retrolm.prefill import page_means
from ragpress.models import CausalLM


class Clock(BaseStreamer):
    """Host times at which each step's tokens reach the streamer (the first ``put`` is the prompt)."""

    def __init__(self):
        self.times: list[float] = []
        self.tokens: list[torch.Tensor] = []

    def put(self, value):
        self.times.append(time.perf_counter())
        self.tokens.append(value.cpu().reshape(-1))

    def end(self):
        pass

    def step_ms(self) -> tuple[float, float]:
        """Median ms between new tokens, and the slowest gap (where compiling shows)."""
        gaps = [1e3 * (b - a) for a, b in zip(self.times[1:], self.times[2:])]
        return statistics.median(gaps), max(gaps)


def copy_bandwidth(device: torch.device, gib: float) -> float:
    """Bytes read + written per second by a device-to-device copy of ``gib`` GiB (median of 10)."""
    src = torch.randn(int(gib * 2**30) // 2, dtype=torch.bfloat16, device=device)
    dst, times = torch.empty_like(src), []
    for _ in range(12):
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * src.numel() * 2 / statistics.median(times[2:])


def kv_bytes_per_token(config) -> int:
    return config.num_hidden_layers * 2 * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) * 2


def step_bytes(model, config, batch: int, attended: int) -> int:
    """What one decoding step must read: every weight but the input embedding (a row per sequence),
    and the KV of ``attended`` tokens per sequence."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) - model.get_input_embeddings().weight.nbytes
    return weights + batch * attended * kv_bytes_per_token(config)


def random_kv(config, batch: int, tokens: int, layer: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer ``layer``'s random KV (the same on every call), scaled like real post-norm keys."""
    g = torch.Generator(device=device).manual_seed(layer)
    shape = (batch, config.num_key_value_heads, tokens, config.hidden_size // config.num_attention_heads)
    return (torch.randn(shape, generator=g, device=device, dtype=torch.bfloat16),
            torch.randn(shape, generator=g, device=device, dtype=torch.bfloat16))


def filled_cache(config, batch: int, tokens: int, static: int | None, device):
    """A dynamic cache, or a static one of ``static`` positions, holding ``tokens`` random KV."""
    cache = StaticCache(config=config, max_cache_len=static) if static else DynamicCache()
    for layer in range(config.num_hidden_layers):
        k, v = random_kv(config, batch, tokens, layer, device)
        cache.update(k, v, layer, {"cache_position": torch.arange(tokens, device=device)})
    return cache


def same_steps(a: torch.Tensor, b: torch.Tensor) -> str:
    """'all N' when two ``[batch, N]`` greedy token grids agree, else how many steps agree before they part."""
    differ = (a != b).any(0).nonzero()
    return f"all {a.shape[1]}" if not len(differ) else f"first {int(differ[0])} of {a.shape[1]}"


def full_attention(lm: CausalLM, config, batch: int, n: int, new: int, fast: bool) -> dict:
    """One step time (ms) of decoding after ``n`` context tokens, eager or fast, and the tokens."""
    device = lm.device
    prompt = torch.randint(0, config.vocab_size, (batch, n), generator=torch.Generator().manual_seed(n)).to(device)
    mask = torch.ones_like(prompt)
    cache = filled_cache(config, batch, n - 1, static_length(n + new) if fast else None, device)
    clock = Clock()
    started = time.perf_counter()
    continue_generate(lm.model, prompt, mask, cache, new, do_sample=False, pad_token_id=0, streamer=clock)
    total = time.perf_counter() - started
    median, slowest = clock.step_ms()
    del cache
    return {"ms": median, "compile_s": slowest / 1e3 if fast else 0.0, "total_s": total, "tokens": torch.stack(clock.tokens[1:], 1)}


def retrolm(lm: CausalLM, config, n: int, new: int, args, fast: bool) -> dict:
    """RetroLM's decode step (ms) over ``n`` context tokens of random KV offloaded to CPU memory."""
    settings = RetroLMSettings(page_size=args.page_size, pages_kept=args.pages_kept, local_window=args.local_window,
                               reselect_every=args.reselect_every, decode="static" if fast else "eager")
    keys, values = [], []
    for layer in range(config.num_hidden_layers):
        k, v = random_kv(config, 1, n, layer, lm.device)
        keys.append(k.cpu())
        values.append(v.cpu())
    summaries = torch.stack([page_means(k[0].to(lm.device), args.page_size) for k in keys])
    paged = PagedContext(settings, lm, None, n, "", keys, values, summaries)
    query = torch.randint(0, config.vocab_size, (args.query,), generator=torch.Generator().manual_seed(n))
    trace, times = [], []
    stream = paged.stream_ids(query, new + 1, trace=trace)
    tokens = [next(stream)]  # selection + query pass
    last = time.perf_counter()
    for _ in range(new):  # gaps between tokens reaching the host, no synchronisation between them (it would
        tokens.append(next(stream))  # drain the step the static path queues ahead and time only the host)
        times.append(1e3 * (time.perf_counter() - last))
        last = time.perf_counter()
    stream.close()
    return {"ms": statistics.median(times), "attended": len(paged.tokens(trace[0]["pages"])) + args.query, "selections": len(trace),
            "tokens": torch.tensor([tokens]), "slowest_s": max(times) / 1e3}


def gemfilter_pass(lm: CausalLM, config, batch: int, budget: int, new: int, fast: bool) -> dict:
    """GemFilter's second pass: generation over ``budget`` selected tokens per sequence (prefill included)."""
    prompts = list(torch.randint(0, config.vocab_size, (batch, budget), generator=torch.Generator().manual_seed(budget)))
    clock = Clock()
    lm.generate_batch(prompts, new, batch_size=batch, decode="static" if fast else "eager", streamer=clock)
    median, slowest = clock.step_ms()
    return {"ms": median, "tokens": torch.stack(clock.tokens[1:], 1)}


def end_to_end(lm: CausalLM, config, n: int, new: int, fast: bool) -> dict:
    """:meth:`CausalLM.generate` with its prefill: time to first token (s), step time (ms), tokens."""
    prompt = torch.randint(0, config.vocab_size, (1, n), generator=torch.Generator().manual_seed(n))
    clock = Clock()
    sync(lm.device)
    started = time.perf_counter()
    lm.generate(prompt, new, decode="static" if fast else "eager", streamer=clock)
    return {"ttft_s": clock.times[1] - started, "ms": clock.step_ms()[0], "tokens": torch.stack(clock.tokens[1:], 1)}


def fits(config, batch: int, n: int, free: float, weights: float) -> str:
    """Why a shape cannot run on this device, or '' when it can (KV of both caches side by side at worst)."""
    need = weights + batch * static_length(n + 64) * kv_bytes_per_token(config)
    return "" if need < 0.92 * free else f"needs {need / 2**30:.0f} GiB (weights + KV), {free / 2**30:.0f} GiB free"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32768, 65536, 131072])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--new", type=int, default=32, help="new tokens per timed generation")
    parser.add_argument("--page-size", type=int, default=256)
    parser.add_argument("--pages-kept", type=int, default=14)
    parser.add_argument("--local-window", type=int, default=256)
    parser.add_argument("--reselect-every", type=int, default=16)
    parser.add_argument("--query", type=int, default=32)
    parser.add_argument("--gemfilter-budget", type=int, default=4096, help="tokens GemFilter's second pass reads")
    parser.add_argument("--only", nargs="+", default=["full", "retrolm", "e2e", "gemfilter"], help="which measurements to run")
    parser.add_argument("--tiny", action="store_true", help="a tiny 32-layer config on the CPU, for a smoke test")
    args = parser.parse_args()
    if args.tiny:
        args.lengths, args.gemfilter_budget, args.page_size, args.local_window = [max(n // 128, 256) for n in args.lengths], 256, 16, 16
        args.new, args.query = min(args.new, 6), 8
    config = llama_8b_config(args.tiny)
    config.eos_token_id = None  # random weights: never stop early
    model, device, built = random_model(config)
    lm = CausalLM(model, SimpleNamespace(pad_token_id=0, eos_token_id=None, decode=lambda ids, **k: ""), "llama-3.1-8b-shaped-random")
    bandwidth = copy_bandwidth(device, 0.0625 if args.tiny else 4.0)
    weights = sum(p.nbytes for p in model.parameters())
    free = torch.cuda.mem_get_info()[0] if device.type == "cuda" else 16 * 2**30
    print(f"{built}; copy bandwidth {bandwidth / 1e12:.2f} TB/s; {vars(args)}", flush=True)
    rows = []

    def record(method, n, batch, attended, eager, fast, match, note=""):
        bound = 1e3 * step_bytes(model, config, batch, attended) / bandwidth
        row = {"method": method, "tokens": n, "batch": batch, "attended": attended, "bound_ms": bound, "eager_ms": eager, "fast_ms": fast, "match": match, "note": note}
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)

    for n in args.lengths:
        for batch in args.batch if "full" in args.only else []:
            why = fits(config, batch, n, free, weights)
            if why:
                record("full attention", n, batch, n, None, None, None, f"skipped: {why}")
                continue
            eager = full_attention(lm, config, batch, n, args.new, fast=False)
            fast = full_attention(lm, config, batch, n, args.new, fast=True)
            record("full attention", n, batch, n, eager["ms"], fast["ms"], same_steps(eager["tokens"], fast["tokens"]), f"slowest fast step {fast['compile_s']:.1f}s")
        if "retrolm" not in args.only:
            continue
        eager, fast = (retrolm(lm, config, n, args.new, args, f) for f in (False, True))
        record("RetroLM", n, 1, eager["attended"], eager["ms"], fast["ms"], same_steps(eager["tokens"], fast["tokens"]),
               f"{eager['selections']} / {fast['selections']} selections; slowest fast step {fast['slowest_s']:.1f}s")
    eager, fast = (end_to_end(lm, config, args.lengths[0], args.new, f) for f in (False, True)) if "e2e" in args.only else (None, None)
    eager and record("full attention, prefill included", args.lengths[0], 1, args.lengths[0], eager["ms"], fast["ms"], same_steps(eager["tokens"], fast["tokens"]),
           f"time to first token eager {eager['ttft_s']:.2f}s, fast {fast['ttft_s']:.2f}s")
    for batch in args.batch if "gemfilter" in args.only else []:
        eager = gemfilter_pass(lm, config, batch, args.gemfilter_budget, args.new, fast=False)
        fast = gemfilter_pass(lm, config, batch, args.gemfilter_budget, args.new, fast=True)
        record("GemFilter 2nd pass", args.gemfilter_budget, batch, args.gemfilter_budget, eager["ms"], fast["ms"], same_steps(eager["tokens"], fast["tokens"]))
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "decode_limit.json"), "w") as f:
            json.dump({"device": built, "bandwidth": bandwidth, "args": vars(args), "rows": rows}, f, indent=1)
    print()
    fmt = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
    print_table(["method", "context tokens", "batch", "attended / seq", "bound (ms/step)", "eager (ms/step)", "fast (ms/step)",
                 "eager / bound", "fast / bound", "greedy steps equal", "note"],
                [[r["method"], r["tokens"], r["batch"], r["attended"], f"{r['bound_ms']:.2f}", fmt(r["eager_ms"]), fmt(r["fast_ms"]),
                  "-" if r["eager_ms"] is None else f"{r['eager_ms'] / r['bound_ms']:.1f}x", "-" if r["fast_ms"] is None else f"{r['fast_ms'] / r['bound_ms']:.1f}x",
                  r["match"] or "-", r["note"]] for r in rows], "lrrrrrrrrcl")


if __name__ == "__main__":
    main()
