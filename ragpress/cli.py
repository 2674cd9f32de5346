"""The ``ragpress`` command: ``demo``, ``serve PIPELINE.yaml``, ``index``, ``stages``, ``train METHOD`` and ``eval``.

Stages and trainers are found, not listed: every public module or method folder under the stage
families is a stage's home, and every method folder with a ``train.py`` (exposing
``add_arguments(parser)`` and ``run(args)``) is a trainer, named after its folder.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import os
import pkgutil
import sys
from pathlib import Path

STAGE_PACKAGES = ("chunkers", "retrievers", "compressors", "generators")


def _homes() -> list[str]:
    """Module paths of the stage homes: ``ragpress.<family>.<method>`` for each public module or folder."""
    homes = []
    for family in STAGE_PACKAGES:
        package = importlib.import_module(f"ragpress.{family}")
        homes += [f"ragpress.{family}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_") and m.name != "base"]
    return homes


def _summary(doc: str | None) -> str:
    summary = (doc or "").strip().split("\n\n")[0].replace("\n", " ")
    return summary if len(summary) <= 160 else summary[:159] + "…"


def stages() -> list[tuple[str, str]]:
    """Every concrete stage class whose extras are installed, as ``(family.method.Class, summary)``: the
    summary is the first paragraph of the docstring of the module or method folder that exports it
    (which names the method and its paper)."""
    from ragpress.core.stage import Stage

    found = []
    for home in _homes():
        try:
            module = importlib.import_module(home)
        except ImportError:  # its extra is missing: see unavailable()
            continue
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and issubclass(cls, Stage) and cls.__module__.startswith(home) and not name.startswith("_"):
                found.append((cls, f"{home.removeprefix('ragpress.')}.{name}", _summary(module.__doc__)))
    return [(path, summary) for cls, path, summary in found if not any(c is not cls and issubclass(c, cls) for c, _, _ in found)]


def unavailable() -> list[tuple[str, str]]:
    """``(family.method, what to install)`` for every stage home whose extras are missing."""
    out = []
    for home in _homes():
        try:
            importlib.import_module(home)
        except ImportError as error:
            out.append((home.removeprefix("ragpress."), str(error)))
    return out


def trainers() -> dict[str, tuple[str, str]]:
    """``{command: (module, summary)}`` for every method folder with a ``train.py``, found on disk without
    importing anything (a method's package checks its extras when imported); the summary is the
    docstring of its ``add_arguments``."""
    out = {}
    for family in STAGE_PACKAGES:
        folder = Path(importlib.import_module(f"ragpress.{family}").__path__[0])
        for path in sorted(folder.glob("*/train.py")):
            tree = ast.parse(path.read_text())
            doc = next((ast.get_docstring(f) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "add_arguments"), "")
            out[path.parent.name.replace("_", "-")] = (f"ragpress.{family}.{path.parent.name}.train", _summary(doc).split("``: ", 1)[-1].rstrip("."))
    return out


def train(argv: list[str]) -> None:
    """``ragpress train METHOD ...``: the trainer's own arguments, parsed after the method is known."""
    found = trainers()
    parser = argparse.ArgumentParser(prog="ragpress train", description="Train a trainable method.")
    parser.add_argument("method", choices=sorted(found), help="; ".join(f"{name}: {summary}" for name, (_, summary) in sorted(found.items())))
    parser.epilog = "Each method's own options: ragpress train METHOD --help."
    method, rest = parser.parse_known_args(argv[:1])[0].method, argv[1:]
    module = importlib.import_module(found[method][0])
    own = argparse.ArgumentParser(prog=f"ragpress train {method}", description=module.add_arguments.__doc__)
    module.add_arguments(own)
    module.run(own.parse_args(rest))


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help="a pipeline file (Pipeline.save); read as untrusted, like any shared file")
    corpus = parser.add_mutually_exclusive_group()
    corpus.add_argument("--index", metavar="DOCS", help='documents to answer from: JSON lines, one {"text", "id"?, ...} a line (.gz too)')
    corpus.add_argument("--python-reference", action="store_true", help="answer from the Python language reference (the demo's corpus)")
    parser.add_argument("--cache", metavar="DIR", help="keep the retrievers' indexes here and load them next time (Pipeline.index)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="default 8000")
    parser.add_argument("--max-batch", type=int, default=8, help="most /query requests run in one run_batch call (default 8)")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a batch waits for more requests (default 10)")
    parser.add_argument("--allow", action="append", default=[], metavar="SETTING",
                        help="let the file set this guarded setting (a host, a secret, code): see SECURITY.md; repeatable")
    parser.add_argument("--allow-external", action="store_true", help="let the file name stage classes from outside ragpress")


def serve(args: argparse.Namespace) -> None:
    """``ragpress serve``: load the pipeline file, index the documents, serve until interrupted."""
    from ragpress.pipelines.graph import Pipeline
    from ragpress.serve import create_app, read_documents
    from ragpress.serve import serve as run_server

    pipeline = Pipeline.load(args.pipeline, allow_external=args.allow_external, allow=args.allow)
    if args.index or args.python_reference:
        from ragpress.demo import python_reference

        documents = read_documents(args.index) if args.index else python_reference()
        chunks = pipeline.index(documents, cache=args.cache)
        print(f"Indexed {len(documents)} documents as {len(chunks)} chunks.", flush=True)
    else:
        print("No documents given: /query needs --index DOCS or --python-reference; /compress works without.", flush=True)
    app = create_app(pipeline, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    print(f"{pipeline!r}\nServing on http://{args.host}:{args.port} (API docs at /docs).", flush=True)
    run_server(app, args.host, args.port)


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline", required=True, help="a pipeline file: its chunker, and the model of its LanceDB or dense retriever")
    parser.add_argument("--input", required=True, nargs="+", metavar="FILES",
                        help="JSON lines, Parquet or text files, paths or quoted globs ('docs/*.jsonl')")
    parser.add_argument("--store", required=True, help="the LanceDB folder (or bucket URI) to fill; a rerun adds only new documents")
    parser.add_argument("--workers", type=int, default=1, help="Ray actors for chunking and as many for embedding (default 1)")
    parser.add_argument("--chunk-workers", type=int, help="chunking actors, when CPUs should feed the embedding GPUs with more (default: --workers)")
    parser.add_argument("--on-bad-input", choices=("skip", "fail"), default="skip",
                        help="a line that is not a document: skip it and list it at the end (default), or stop the job")
    parser.add_argument("--segments", metavar="FILE", help="also precompute the pipeline's soft compressor (CompLLM, ARC-Encoder) "
                        "for every new chunk into this segment cache; compress with cache=FILE to use it")
    parser.add_argument("--allow", action="append", default=[], metavar="SETTING", help="let the file set this guarded setting; repeatable")
    parser.add_argument("--allow-external", action="store_true", help="let the file name stage classes from outside ragpress")


def index(args: argparse.Namespace) -> None:
    """``ragpress index``: the pipeline's indexing half over the files, as a Ray Data job (ragpress.scale)."""
    from ragpress.pipelines.graph import Pipeline
    from ragpress.scale import IndexJob

    pipeline = Pipeline.load(args.pipeline, allow_external=args.allow_external, allow=args.allow)
    print(IndexJob(store=args.store, workers=args.workers, chunk_workers=args.chunk_workers, on_bad_input=args.on_bad_input, segments=args.segments).run(pipeline, args.input), flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="ragpress", description="Context compression and retrieval-augmented generation.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="answer questions over the Python language reference with the bundled models")
    demo.add_argument("questions", nargs="*", help="questions to ask (default: three sample questions)")
    demo.add_argument("--top-k", type=int, default=8, help="chunks each retriever returns (default 8)")
    demo.add_argument("--budget", type=int, default=384, help="token budget of --compressor budget (default 384)")
    demo.add_argument("--compressor", choices=("provence", "budget"), default="provence",
                      help="provence: keep the sentences that answer (default); budget: whole chunks while they fit --budget")
    demo.add_argument("--compare", action="store_true", help="answer each question with and without compression, side by side")
    add_serve_arguments(commands.add_parser("serve", help="serve a pipeline file over HTTP: /query, /compress, /docs"))
    add_index_arguments(commands.add_parser("index", help="index JSON lines, Parquet or text files into a LanceDB folder on Ray"))
    commands.add_parser("stages", help="list the stages and the papers they implement")
    commands.add_parser("train", help="train a trainable method: ragpress train METHOD --help", add_help=False)
    commands.add_parser("eval", help="score methods on long-context tasks at several ratios: ragpress eval --help", add_help=False)
    if argv[:1] == ["train"]:
        train(argv[1:])
        return 0
    if argv[:1] == ["eval"]:
        from ragpress.eval import command

        own = argparse.ArgumentParser(prog="ragpress eval", description="Score methods on long-context tasks at several compression ratios.")
        command.add_arguments(own)
        command.main(own.parse_args(argv[1:]))
        return 0
    args = parser.parse_args(argv)
    if args.command == "demo":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo uses only the bundled models
        from ragpress.demo import QUESTIONS, run_compare, run_demo

        run = run_compare if args.compare else run_demo
        run(tuple(args.questions) or QUESTIONS, top_k=args.top_k, budget=args.budget, compress=args.compressor)
    elif args.command in ("serve", "index"):
        try:
            (serve if args.command == "serve" else index)(args)
        except (ValueError, TypeError, OSError, ImportError) as error:
            print(f"ragpress {args.command}: {error}", file=sys.stderr)
            return 2
    elif args.command == "stages":
        for path, summary in stages():
            print(f"{path}\n    {summary}")
        for home, why in unavailable():
            print(f"{home} (not installed)\n    {why}")
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
