"""RetroLM's paged prefill against a one-shot prefill (GPU), LLaMA-3.1-8B-shaped, random bf16.

Per context length, in one run:

- one-shot: :func:`encode_pages` with the whole context in one forward and the KV left on the GPU
  (what a plain generator's prefill costs, plus the page summaries);
- RetroLM as it runs by default: :func:`encode_pages` with ``prefill_tokens=None`` (chunks as large
  as free GPU memory allows, :func:`prefill_chunk`) and ``offload=True`` (the KV copied into pinned
  host memory, where the pages live between queries), then
- ``--chunks``: the same with fixed chunk sizes, as when memory allows less than the whole context.

Each build is asked the same query (``--query`` random tokens): the pages of its first selection are
compared with the one-shot build's, its summaries by relative difference and its stored KV by the largest
absolute difference from the one-shot cache. Time = wall seconds of
the call (synchronised); peak = ``torch.cuda.max_memory_allocated`` during it, weights included.

    python -m benchmarks.retrolm_prefill [--lengths 65536 131072] [--chunks 16384] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os
from types import SimpleNamespace

import torch

from benchmarks._common import llama_8b_config, peak_gib, print_table, random_model, reset_peak, timed
from ragpress.generators.retrolm import PagedContext, RetroLMSettings, encode_pages
from ragpress.generators.retrolm.prefill import prefill_chunk
from ragpress.models import CausalLM


def first_pages(lm: CausalLM, settings: RetroLMSettings, n: int, built, query: torch.Tensor) -> list[int]:
    """The pages the query selects first over a build (``keys, values, summaries``)."""
    trace: list = []
    paged = PagedContext(settings, lm, None, n, "", *built)
    next(paged.stream_ids(query, 1, trace=trace))
    return trace[0]["pages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[65536, 131072])
    parser.add_argument("--chunks", type=int, nargs="*", default=[], help="fixed chunk sizes timed besides the default")
    parser.add_argument("--page-size", type=int, default=256)
    parser.add_argument("--pages-kept", type=int, default=14)
    parser.add_argument("--query", type=int, default=32)
    parser.add_argument("--tiny", action="store_true", help="a tiny 32-layer config on the CPU, for a smoke test")
    args = parser.parse_args()
    if args.tiny:
        args.lengths, args.page_size, args.query = [max(n // 128, 256) for n in args.lengths], 16, 8
    config = llama_8b_config(args.tiny)
    config.eos_token_id = None
    model, device, built = random_model(config)
    lm = CausalLM(model, SimpleNamespace(pad_token_id=0, eos_token_id=None), "llama-3.1-8b-shaped-random")
    settings = RetroLMSettings(page_size=args.page_size, pages_kept=args.pages_kept, decode="eager")
    print(f"{built}; {vars(args)}", flush=True)
    encode_pages(lm, torch.arange(4 * args.page_size), args.page_size, True, None)  # warm-up: kernels and pinned memory
    rows = []
    for n in args.lengths:
        ids = torch.randint(0, config.vocab_size, (n,), generator=torch.Generator().manual_seed(n))
        query = torch.randint(0, config.vocab_size, (args.query,), generator=torch.Generator().manual_seed(n + 1))
        reset_peak(device)
        one_shot_s, reference = timed(encode_pages, lm, ids, args.page_size, False, n, device=device)
        one_shot_gib, reference_pages = peak_gib(device), first_pages(lm, settings, n, reference, query)
        row = {"tokens": n, "one_shot_s": one_shot_s, "one_shot_gib": one_shot_gib, "pages": reference_pages, "runs": []}
        for chunk in [None, *args.chunks]:
            reset_peak(device)
            step = prefill_chunk(model, n, args.page_size, device) if chunk is None else chunk
            seconds, build = timed(encode_pages, lm, ids, args.page_size, True, chunk, device=device)
            gib, pages = peak_gib(device), first_pages(lm, settings, n, build, query)
            gap = ((build[2] - reference[2]).norm() / reference[2].norm()).item()
            kv_gap = max((stored.to(device) - kept).abs().max().item() for pair in zip(build[:2], reference[:2]) for stored, kept in zip(*pair))
            run = {"chunk": "free memory" if chunk is None else chunk, "tokens_a_forward": step, "seconds": seconds, "gib": gib,
                   "over_one_shot": seconds / one_shot_s, "same_pages": pages == reference_pages, "summary_gap": gap,
                   "kv_max_difference": kv_gap}
            row["runs"].append(run)
            print(json.dumps({"tokens": n, "one_shot_s": round(one_shot_s, 2), **{k: round(v, 4) if isinstance(v, float) else v for k, v in run.items()}}), flush=True)
            del build
        del reference
        rows.append(row)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "retrolm_prefill.json"), "w") as f:
            json.dump({"device": built, "args": vars(args), "rows": rows}, f, indent=1)
    print()
    print_table(["context tokens", "one-shot, KV on GPU (s)", "one-shot peak (GiB)", "RetroLM chunking", "tokens a forward",
                 "RetroLM prefill + offload (s)", "peak (GiB)", "RetroLM / one-shot", "same pages selected", "summaries differ by", "KV differs by"],
                [[r["tokens"], f"{r['one_shot_s']:.2f}", f"{r['one_shot_gib']:.1f}", run["chunk"], run["tokens_a_forward"], f"{run['seconds']:.2f}",
                  f"{run['gib']:.1f}", f"{run['over_one_shot']:.2f}x", "yes" if run["same_pages"] else "no", f"{run['summary_gap']:.1e}", f"{run['kv_max_difference']:.1e}"]
                 for r in rows for run in r["runs"]], "rrrlrrrrcrr")


if __name__ == "__main__":
    main()
