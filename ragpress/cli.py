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
    train = commands.add_parser("train", help="train a soft compressor's checkpoint")
    methods = train.add_subparsers(dest="method", metavar="METHOD", required=True)
    from ragpress.compressors import arc_train

    arc_train.add_cli(methods)
    args = parser.parse_args(argv)

    if args.command == "demo":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo uses only the bundled models
        from ragpress.demo import QUESTIONS, run_demo

        run_demo(tuple(args.questions) or QUESTIONS, k=args.k, budget=args.budget)
    elif args.command == "train":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        {"arc": arc_train.run_cli}[args.method](args)
    elif args.command == "stages":
        for path, summary in stages():
            print(f"{path}\n    {summary}")
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
