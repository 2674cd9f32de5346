"""Time of the code chunker on one multi-line statement of growing length, the case that made its
statement fallback quadratic (it tokenized the rest of the file at every cut). The LLM is stubbed to
return no partition points, so the fallbacks, not generation, are timed; the printed ratio of time per
line at the largest size to the smallest is about 1 when the work is linear.

    python -m benchmarks.code_chunking_scale [--lines 1000 2000 4000] [--max-tokens 120]
"""

from __future__ import annotations

import argparse
import time

from benchmarks._common import print_table
from ragpress.chunkers.code import CodeChunker
from ragpress.core.types import Document


def statement(lines: int) -> str:
    return "data = [\n" + "".join(f"    compute({i}, {i} * 2),\n" for i in range(lines)) + "]\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--max-tokens", type=int, default=120)
    args = parser.parse_args()

    CodeChunker.ask_llm = lambda self, prompts: [""] * len(prompts)  # the fallbacks are measured, not the LLM
    chunker = CodeChunker(max_tokens=args.max_tokens, language="python")
    chunker.run([Document(statement(100))])  # over the limit, so the model loads here: loading is not the cost measured
    rows, per_line = [], []
    for lines in args.lines:
        text = statement(lines)
        start = time.perf_counter()
        chunks = chunker.run([Document(text)])
        seconds = time.perf_counter() - start
        per_line.append(seconds / lines)
        rows.append((f"{lines:,}", f"{len(text):,}", f"{seconds:.2f}", f"{1000 * seconds / lines:.2f}",
                     len(chunks), max(c.token_count for c in chunks)))
    print_table(("lines", "characters", "seconds", "ms per line", "chunks", "largest chunk (tokens)"), rows)
    print(f"time per line, largest / smallest: {per_line[-1] / per_line[0]:.2f}x (1 = linear)")


if __name__ == "__main__":
    main()
