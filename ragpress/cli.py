"""The ``ragpress`` command."""

from __future__ import annotations

import argparse
import os
import sys

STAGES = (
    ("chunkers", "SentenceChunker", "spaCy sentences/paragraphs packed to a token limit (baseline)"),
    ("chunkers", "TokenWindowChunker", "fixed token windows with overlap (baseline)"),
    ("retrievers", "DenseRetriever", "sentence-transformers + faiss (baseline)"),
    ("retrievers", "BM25Retriever", "Okapi BM25 via bm25s (baseline)"),
    ("retrievers", "ReciprocalRankFusion", "Cormack et al., SIGIR 2009"),
    ("compressors", "BudgetPacker", "whole chunks, best first, within a token budget (baseline)"),
    ("generators", "TransformersGenerator", "any transformers causal LM, chat template, streaming"),
    ("generators", "OpenAICompatibleGenerator", "any OpenAI-compatible server (vLLM, TGI, llama.cpp)"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ragpress", description="Context compression and retrieval-augmented generation.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="answer questions over the Python language reference with the bundled models")
    demo.add_argument("questions", nargs="*", help="questions to ask (default: three sample questions)")
    demo.add_argument("--k", type=int, default=8, help="chunks each retriever returns (default 8)")
    demo.add_argument("--budget", type=int, default=384, help="token budget of the packed context (default 384)")
    commands.add_parser("stages", help="list the stages and the papers they implement")
    args = parser.parse_args(argv)

    if args.command == "demo":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo uses only the bundled models
        from ragpress.demo import QUESTIONS, run_demo

        run_demo(tuple(args.questions) or QUESTIONS, k=args.k, budget=args.budget)
    elif args.command == "stages":
        for package, name, source in STAGES:
            print(f"{package + '.' + name:<40} {source}")
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
