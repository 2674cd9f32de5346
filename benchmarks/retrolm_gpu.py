"""RetroLM decode latency and memory against full attention (GPU), LLaMA-3.1-8B-shaped, random bf16.

Per context length, in one run: the chunked prefill timed at each ``--prefill-tokens`` (one page a
forward, as RetroLM did before, and larger chunks of whole pages; the caches are compared), then

- full attention: greedy decoding of ``--new`` tokens over the whole KV cache on the GPU;
- RetroLM: the same cache offloaded to CPU as pages with mean-key summaries; the query (``--query``
  random tokens) is scored against the pages, the first page + local window + ``pages_kept`` pages are
  copied to the GPU, and ``--new`` tokens are decoded, re-selecting pages every ``reselect_every``
  tokens (the re-selection copies are inside the timed loop).

Decode latency = median wall time between generated tokens reaching the host (full attention
synchronises each token; RetroLM's static path queues the next step ahead, so a synchronisation between
tokens would hide its GPU time); memory
= ``torch.cuda.max_memory_allocated`` during decoding (weights included), and the prefill peak of the
largest chunk.

    python -m benchmarks.retrolm_gpu [--lengths 32768 65536 131072] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from types import SimpleNamespace

import torch
from transformers import DynamicCache

from benchmarks._common import llama_8b_config, peak_gib, print_table, random_model, reset_peak, timed
from ragpress.core.kv_cache import cache_argument
from ragpress.generators.retrolm import PagedContext, RetroLMSettings, encode_pages
from ragpress.models import CausalLM


@torch.inference_mode()
def full_decode(lm: CausalLM, cache: DynamicCache, query: torch.Tensor, new: int) -> list[float]:
    """Per-token times of greedy decoding over the whole cache (query first, then ``new`` tokens)."""
    n, times = cache.get_seq_length(), []
    logits = lm.model(input_ids=query[None], use_cache=True, logits_to_keep=1, **cache_argument(lm.model, cache)).logits

    def step(logits: torch.Tensor, at: int) -> torch.Tensor:
        token = logits[0, -1].argmax()[None, None]
        position = torch.tensor([[at]], device=lm.device)
        return lm.model(input_ids=token, position_ids=position, use_cache=True, logits_to_keep=1, **cache_argument(lm.model, cache)).logits

    for i in range(new):
        seconds, logits = timed(step, logits, n + len(query) + i, device=lm.device)
        times.append(seconds)
    return times


@torch.inference_mode()
def retrolm_decode(paged: PagedContext, query: torch.Tensor, new: int) -> tuple[list[float], list]:
    trace, times = [], []
    stream = paged.stream_ids(query, new + 1, trace=trace)
    next(stream)  # selection + query pass (time to first token, not decode latency)
    last = time.perf_counter()
    for _ in range(new):  # no synchronisation between tokens: it would drain the step queued ahead (static path)
        next(stream)
        times.append(time.perf_counter() - last)
        last = time.perf_counter()
    stream.close()
    return times, trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32768, 65536, 131072])
    parser.add_argument("--page-size", type=int, default=256)
    parser.add_argument("--pages-kept", type=int, default=14)
    parser.add_argument("--local-window", type=int, default=256)
    parser.add_argument("--reselect-every", type=int, default=16)
    parser.add_argument("--query", type=int, default=32)
    parser.add_argument("--new", type=int, default=48)
    parser.add_argument("--prefill-tokens", type=int, nargs="+", default=[256, 8192, 16384],
                        help="tokens per prefill forward, each timed (default: one page, 8K, 16K)")
    parser.add_argument("--tiny", action="store_true", help="a tiny 32-layer config, for a CPU smoke test")
    args = parser.parse_args()

    config = llama_8b_config(args.tiny)
    config.eos_token_id = None  # random weights: never stop early
    model, device, built = random_model(config)
    lm = CausalLM(model, SimpleNamespace(pad_token_id=0, eos_token_id=None), "llama-3.1-8b-shaped-random")
    settings = RetroLMSettings(page_size=args.page_size, pages_kept=args.pages_kept, local_window=args.local_window,
                               reselect_every=args.reselect_every, offload=True)
    print(f"{built}; {vars(args)}", flush=True)
    rows = []
    for n in args.lengths:
        ids = torch.randint(0, config.vocab_size, (n,))
        query = torch.randint(0, config.vocab_size, (args.query,), device=device)
        prefill, reference = {}, None
        for chunk in args.prefill_tokens:
            reset_peak(device)
            prefill[chunk], (keys, values, summaries) = timed(encode_pages, lm, ids, args.page_size, False, chunk, device=device)
            prefill_gib = peak_gib(device)
            if reference is None:
                reference = summaries
            else:  # the chunk size must not change the pages (bf16 attention in other blocks: rounding only)
                gap = ((summaries - reference).norm() / reference.norm()).item()
                print(f"{n:>7} tokens: prefill {chunk} tokens a forward: {prefill[chunk]:.1f}s, summaries differ by {gap:.1e}", flush=True)
            if chunk != args.prefill_tokens[-1]:
                del keys, values, summaries
        prefill_s = prefill[args.prefill_tokens[-1]]
        cache = DynamicCache()
        for layer, (k, v) in enumerate(zip(keys, values)):
            cache.update(k, v, layer)
        keys, values = [k.cpu() for k in keys], [v.cpu() for v in values]  # offload: the paged store lives in CPU memory
        reset_peak(device)  # the cache now holds the only GPU copy of the KV
        full_times = full_decode(lm, cache, query, args.new)
        full_gib = peak_gib(device)
        del cache
        paged = PagedContext(settings, lm, None, n, "", keys, values, summaries)
        reset_peak(device)
        retro_times, trace = retrolm_decode(paged, query, args.new)
        retro_gib = peak_gib(device)
        kept = len(paged.tokens(trace[0]["pages"]))
        row = {"tokens": n, "prefill_s": prefill_s, "prefill_by_chunk": prefill, "prefill_gib": prefill_gib, "full_ms": 1e3 * statistics.median(full_times),
                   "retrolm_ms": 1e3 * statistics.median(retro_times), "retrolm_mean_ms": 1e3 * statistics.mean(retro_times),
                   "full_gib": full_gib, "retrolm_gib": retro_gib, "kept_tokens": kept, "selections": len(trace),
                   "pages": paged.num_pages, "trace": [t["pages"] for t in trace]}
        rows.append(row)
        print(f"{n:>7} tokens: prefill {prefill_s:.1f}s peak {prefill_gib:.1f}GiB | decode/token full {row['full_ms']:.1f}ms "
              f"{full_gib:.1f}GiB | RetroLM {row['retrolm_ms']:.1f}ms (mean {row['retrolm_mean_ms']:.1f}ms incl. "
              f"{len(trace) - 1} re-selections) {retro_gib:.1f}GiB, {kept} of {n} context tokens read", flush=True)
        del keys, values, summaries, paged
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "retrolm_gpu.json"), "w") as f:
            json.dump({"device": built, "args": vars(args), "rows": rows}, f, indent=1)
    print()
    print_table(["tokens"] + [f"prefill, {c} tokens a forward (s)" for c in args.prefill_tokens] + ["speed-up"],
                [[r["tokens"]] + [f"{r['prefill_by_chunk'][c]:.1f}" for c in args.prefill_tokens]
                 + [f"{r['prefill_by_chunk'][args.prefill_tokens[0]] / r['prefill_s']:.1f}x"] for r in rows], "r" * (len(args.prefill_tokens) + 2))
    print()
    print_table(["tokens", "prefill (s)", "prefill peak (GiB)", "full ms/token", "RetroLM ms/token (median / mean)", "speed-up",
                 "full decode peak (GiB)", "RetroLM decode peak (GiB)", "context tokens read"], [
        [r["tokens"], f"{r['prefill_s']:.1f}", f"{r['prefill_gib']:.1f}", f"{r['full_ms']:.1f}", f"{r['retrolm_ms']:.1f} / {r['retrolm_mean_ms']:.1f}",
         f"{r['full_ms'] / r['retrolm_ms']:.2f}x", f"{r['full_gib']:.1f}", f"{r['retrolm_gib']:.1f}", r["kept_tokens"]]
        for r in rows], "r" * 9)


if __name__ == "__main__":
    main()
