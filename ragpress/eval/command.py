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
    parser.add_argument("--shard", type=shard, default=(0, 1), metavar="I/N",
                        help="answer only every N-th row, from the I-th (0-based): N parallel workers, each with its own --out "
                             "and GPU, share one run; python -m ragpress.eval.merge joins their predictions (default 0/1)")
    parser.add_argument("--gpu-memory-fraction", type=gpu_fraction, default=None, metavar="F",
                        help="the most of the GPU's memory this process may take (0 < F <= 1; batch budgets follow it): "
                             "1/K for each of K workers sharing a GPU (default: no cap)")


def shard(text: str) -> tuple[int, int]:
    """``"I/N"`` as ``(I, N)``."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise argparse.ArgumentTypeError(f"--shard takes I/N with 0 <= I < N, such as 0/2 or 1/2; got {text!r}")
    return int(index), int(count)


def gpu_fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"--gpu-memory-fraction takes a share of the GPU's memory, 0 < F <= 1 (0.25 for 4 workers); got {text}")
    return value


def main(args: argparse.Namespace) -> None:
    from ragpress.eval.runner import run
    from ragpress.eval.shared import run_shared

    if args.gpu_memory_fraction is not None:
        cap_gpu_memory(args.gpu_memory_fraction, args.device)

    if args.shared and args.shard != (0, 1):
        raise SystemExit("--shard splits the rows of a plain run; --shared runs are not sharded: drop one of the two")
    ratios = [int(r) if float(r).is_integer() else r for r in args.ratios]
    common = dict(methods=args.methods, ratios=ratios, model=args.model, limit=args.limit, out=args.out, context_tokens=args.context_tokens,
                  seed=args.seed, max_new_tokens=args.max_new_tokens, device=args.device, decode=args.decode)
    for task in args.task:
        if args.shared:
            run_shared(task, questions=args.shared, **common)
        else:  # a shard writes no report: the merge of all shards does
            run(task, **common, shard=args.shard, report=args.shard[1] == 1)
    wrote = ("shared.jsonl", "shared.md") if args.shared else ("predictions.jsonl", "table.md", "score_vs_ratio.png")[: 1 if args.shard[1] > 1 else 3]
    print("Wrote " + ", ".join(f"{args.out}/{name}" for name in wrote))


def cap_gpu_memory(fraction: float, device: str | None) -> None:
    """Cap this process's share of its GPU (``torch.cuda.set_per_process_memory_fraction``); the batch
    budgets of :mod:`ragpress.core.device` read the cap. Without CUDA there is nothing to cap."""
    import torch

    from ragpress.core.device import cuda_index, resolve_device

    where = resolve_device(device)
    if where.type == "cuda":
        torch.cuda.set_per_process_memory_fraction(fraction, cuda_index(where))
    else:
        print(f"--gpu-memory-fraction {fraction}: no GPU here ({where}), nothing to cap")
