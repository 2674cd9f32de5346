"""The ``ragpress`` command."""

from __future__ import annotations

import argparse
import os
import sys

STAGE_PACKAGES = ("chunkers", "retrievers", "compressors", "generators")


def stages() -> list[tuple[str, str]]:
    """Every concrete stage class in ragpress, with the first line of its module's docstring
    (which names the method and its paper)."""
    import importlib
    import inspect
    import pkgutil

    from ragpress.core.stage import Stage

    found = []
    for package in STAGE_PACKAGES:
        for info in pkgutil.iter_modules(importlib.import_module(f"ragpress.{package}").__path__):
            if info.name.startswith("_") or info.name == "base":
                continue
            module = importlib.import_module(f"ragpress.{package}.{info.name}")
            summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            for name, cls in vars(module).items():
                if inspect.isclass(cls) and issubclass(cls, Stage) and cls.__module__ == module.__name__ and not name.startswith("_"):
                    found.append((cls, f"{package}.{info.name}.{name}", summary))
    concrete = [(path, summary) for cls, path, summary in found if not any(c is not cls and issubclass(c, cls) for c, _, _ in found)]
    return [(path, summary if len(summary) <= 160 else summary[:159] + "…") for path, summary in concrete]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ragpress", description="Context compression and retrieval-augmented generation.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="answer questions over the Python language reference with the bundled models")
    demo.add_argument("questions", nargs="*", help="questions to ask (default: three sample questions)")
    demo.add_argument("--k", type=int, default=8, help="chunks each retriever returns (default 8)")
    demo.add_argument("--budget", type=int, default=384, help="token budget of the packed context (default 384)")
    commands.add_parser("stages", help="list the stages and the papers they implement")
    train = commands.add_parser("train", help="train a trainable method").add_subparsers(dest="method", metavar="METHOD", required=True)
    provence = train.add_parser("provence", help="Provence pruner + reranker from JSONL rows {query, passage, sentence_labels[, sentence_spans, rerank_score]}")
    provence.add_argument("--data", required=True, help="training JSONL file")
    provence.add_argument("--out", required=True, help="directory to write config.json + weights.safetensors")
    provence.add_argument("--base", default="minilm-l6", help="encoder to adapt: alias, HF id or path (default minilm-l6)")
    for flag, kind, default in (("--epochs", float, 1.0), ("--batch-size", int, 16), ("--lr", float, 2e-4), ("--max-length", int, 256),
                                ("--lora-r", int, 16), ("--lora-alpha", int, 32), ("--ranking-weight", float, 0.05), ("--seed", int, 0),
                                ("--max-steps", int, None), ("--device", str, None)):
        provence.add_argument(flag, type=kind, default=default, help=f"default {default}")
    compllm = train.add_parser("compllm", help="CompLLM adapters by distillation on offline text (arXiv:2509.19228)")
    compllm.add_argument("--decoder", default="smollm2-135m", help="decoder LM: HF id, path or alias (default smollm2-135m)")
    compllm.add_argument("--out", required=True, help="checkpoint directory to write (adapters.safetensors + config.json)")
    compllm.add_argument("--corpus", help="a corpus .jsonl.gz from compllm_train.save_corpus (default: collect the offline text)")
    compllm.add_argument("--steps", type=int, default=1000)
    compllm.add_argument("--batch-size", type=int, default=32)
    compllm.add_argument("--lr", type=float, default=5e-4)
    compllm.add_argument("--rate", type=float, default=2.0, help="token embeddings per concept embedding (paper: 2)")
    compllm.add_argument("--max-seconds", type=float, help="stop after this many seconds of training")
    compllm.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    from ragpress.compressors import arc_train

    arc_train.add_cli(train)
    args = parser.parse_args(argv)

    if args.command == "demo":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo uses only the bundled models
        from ragpress.demo import QUESTIONS, run_demo

        run_demo(tuple(args.questions) or QUESTIONS, k=args.k, budget=args.budget)
    elif args.command == "train" and args.method == "provence":
        from ragpress.compressors.provence_train import train_provence

        options = {k: v for k, v in vars(args).items() if k not in ("command", "method", "data", "out")}
        record = train_provence(args.data, args.out, **options)
        print(f"trained {record['steps']} steps on {record['windows']} windows: loss {record['first_loss']:.4f} -> {record['final_loss']:.4f}; saved to {args.out}")
    elif args.command == "train" and args.method == "compllm":
        from ragpress.compressors.compllm_train import TrainSettings, train

        settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, rate=args.rate, max_seconds=args.max_seconds)
        result = train(args.decoder, args.out, settings, corpus=args.corpus, device=args.device)
        print(f"saved {args.out} after {result['steps_done']} steps in {result['seconds']} s; last 50 steps: {result['final']}")
    elif args.command == "train" and args.method == "arc":
        arc_train.run_cli(args)
    elif args.command == "stages":
        for path, summary in stages():
            print(f"{path}\n    {summary}")
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
