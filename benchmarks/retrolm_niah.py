"""Needle in a haystack (CPU): RetroLM's KV pages vs full attention vs dense-retrieval RAG at the same
ratio, now one call of the evaluation harness (``ragpress eval``), which replaced this script's own
loop: RULER's single needle (``niah_single``) in Paul Graham essays, SmolLM2-135M answering.

    python -m benchmarks.retrolm_niah [--context-tokens 2048] [--ratios 2] [--limit 6] [--out eval-retrolm]

The same from the command line: ``ragpress eval --task niah_single --methods full retrolm dense --ratios 2``.
"""

from __future__ import annotations

import argparse

import benchmarks._common  # noqa: F401  (sets HF_HUB_OFFLINE before a model loads)
from ragpress.eval import run
from ragpress.eval.report import table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context-tokens", type=int, default=2048)
    parser.add_argument("--ratios", type=float, nargs="+", default=[2])
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--out", default="eval-retrolm")
    args = parser.parse_args()
    rows = run("niah_single", ["full", "retrolm", "dense"], ratios=args.ratios, limit=args.limit, context_tokens=args.context_tokens,
               max_new_tokens=24, out=args.out)
    print(table(rows))


if __name__ == "__main__":
    main()
