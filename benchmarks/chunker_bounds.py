"""Time and memory of every chunker with a token limit on hostile megabytes: one line without a
sentence end, code with ``\\r``-only line ends, a one-statement file, and plain prose, each in a fresh
process so its peak memory is its own. The bounds of SECURITY.md ("bounded work") are checked here,
not in timed tests.

    python -m benchmarks.chunker_bounds [--megabytes 1 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

from benchmarks._common import paul_graham_essays, print_table

INPUTS = {
    "one line, no sentence end": lambda n: (" ".join(f"word{i % 997}" for i in range(n // 8)))[:n],
    "code, \\r line ends": lambda n: "\r".join(f"x{i} = compute({i}, {i} * 2)  # step" for i in range(n // 34))[:n],
    "one statement": lambda n: "total = (" + " + ".join(f"v{i}" for i in range(n // 6))[: n - 12] + ")",
    "essays": lambda n: ("\n\n".join(paul_graham_essays()) * (n // 2_000_000 + 1))[:n],
}


def chunker(name: str, limit: int):
    from ragpress.chunkers.code import CodeChunker
    from ragpress.chunkers.sentence import SentenceChunker
    from ragpress.chunkers.token_window import TokenWindowChunker

    if name == "CodeChunker":
        CodeChunker.ask_llm = lambda self, prompts: [""] * len(prompts)  # partition points from the fallbacks: the LLM's time is not the bound
        return CodeChunker(max_tokens=limit, language="python")
    return {"SentenceChunker(sentence)": SentenceChunker(unit="sentence", max_tokens=limit),
            "SentenceChunker(paragraph)": SentenceChunker(unit="paragraph", max_tokens=limit),
            "TokenWindowChunker": TokenWindowChunker(size=limit, overlap=limit // 4)}[name]


def measure(name: str, kind: str, size: int, limit: int, out) -> None:
    try:
        out.send(run(name, kind, size, limit))
    except Exception as error:  # the parent prints it
        out.send(f"{type(error).__name__}: {error}")


def run(name: str, kind: str, size: int, limit: int) -> tuple[float, float, int, int]:
    from ragpress.core.types import Document

    stage = chunker(name, limit)
    stage.run([Document("Warm up the models. A second sentence.")])  # loading is not the cost measured
    text = INPUTS[kind](size)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    chunks = stage.run([Document(text)])
    seconds = time.perf_counter() - start
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # KiB -> MiB on Linux
    return seconds, peak, len(chunks), max(c.token_count for c in chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, nargs="+", default=[1.0])
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()
    names = ["SentenceChunker(sentence)", "SentenceChunker(paragraph)", "TokenWindowChunker", "CodeChunker"]
    rows = []
    context = multiprocessing.get_context("spawn")
    for megabytes in args.megabytes:
        size = int(megabytes * 1_000_000)
        for kind in INPUTS:
            for name in names:
                receive, send = context.Pipe(duplex=False)
                child = context.Process(target=measure, args=(name, kind, size, args.max_tokens, send))
                child.start()
                child.join()
                result = receive.recv() if receive.poll() else f"the process ended with code {child.exitcode}"
                if isinstance(result, str):
                    print(kind, name, "failed:", result, flush=True)
                    continue
                seconds, peak, count, largest = result
                rows.append((f"{megabytes:g} MB", kind, name, f"{seconds:.1f}", f"{seconds / megabytes:.1f}", f"{peak:.0f}", count, largest))
                print(*rows[-1], flush=True)
    print(f"\nmax_tokens={args.max_tokens}; peak = growth of the process's maximum resident memory while chunking")
    print_table(["text", "input", "chunker", "seconds", "s per MB", "peak MiB", "chunks", "largest chunk (tokens)"], rows, "lllrrrrr")


if __name__ == "__main__":
    main()
