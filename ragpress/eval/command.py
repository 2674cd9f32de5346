"""``ragpress eval``: the runner from the command line (``ragpress eval --help``)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ragpress.eval.methods import METHODS
    from ragpress.eval.registry import TASKS

    parser.add_argument("--task", nargs="+", required=True, help=f"task names ({', '.join(TASKS)}) or JSON-lines files")
    parser.add_argument("--methods", nargs="+", default=None, help=f"default: all of {', '.join(METHODS)}")
    parser.add_argument("--ratios", type=float, nargs="+", default=[2, 4, 8], help="compression ratios, tokens in per token read (default 2 4 8)")
    parser.add_argument("--model", default="smollm2-135m", help="the causal LM that answers: any HF id or path (default smollm2-135m)")
    parser.add_argument("--limit", type=int, default=10, help="examples per task (default 10)")
    parser.add_argument("--context-tokens", type=int, default=4096, help="context length of the generated tasks (default 4096)")
    parser.add_argument("--out", default="eval-out", help="folder for predictions.jsonl, table.md and score_vs_ratio.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 48 for RULER, 24 for QA, 128 for code")
    parser.add_argument("--device", default=None, help="default: cuda when there is one, else cpu")
    parser.add_argument("--decode", default="auto", choices=("auto", "eager", "static"), help="the answering model's decode path (default auto)")
    parser.add_argument("--shared", type=int, default=0, metavar="Q",
                        help="SCBench mode: Q questions over each shared context (niah tasks), methods prepare once per context")


def main(args: argparse.Namespace) -> None:
    from ragpress.eval.runner import run
    from ragpress.eval.shared import run_shared

    ratios = [int(r) if float(r).is_integer() else r for r in args.ratios]
    common = dict(methods=args.methods, ratios=ratios, model=args.model, limit=args.limit, out=args.out, context_tokens=args.context_tokens,
                  seed=args.seed, max_new_tokens=args.max_new_tokens, device=args.device, decode=args.decode)
    for task in args.task:
        if args.shared:
            run_shared(task, questions=args.shared, **common)
        else:
            run(task, **common)
    wrote = ("shared.jsonl", "shared.md") if args.shared else ("predictions.jsonl", "table.md", "score_vs_ratio.png")
    print("Wrote " + ", ".join(f"{args.out}/{name}" for name in wrote))
