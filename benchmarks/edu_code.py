"""Side-by-side measurements for the EDU-tree compressor and the code chunker.

1. Needle in a Paul Graham essay: the classic needle sentence is inserted at 3 depths of each essay
   and the question asked; for each budget, EDU sub-tree selection (ragpress.compressors.edu_select)
   is compared with flat sentence selection (same MiniLM ranker, same greedy budget, no tree):
   answer recall (the needle's key phrase survives), compression ratio, seconds.
2. Code chunking of CPython stdlib modules: the syntactic chunker (ragpress.chunkers.code, LLM
   partitions by SmolLM2 where a unit is over the limit) against fixed token windows of whole lines:
   chunks, share of chunks that start at a def/class/decorator line, seconds.

Run: python -m benchmarks.edu_code [--essays 6]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re

from benchmarks._common import QUESTION, insert_needle, paul_graham_essays, timed
from ragpress.chunkers.code import CodeChunker
from ragpress.chunkers.edu import EDUTree, build_edu_tree
from ragpress.compressors.edu_select import EDUSelectCompressor
from ragpress.core.types import Document
from ragpress.models import load_tokenizer

ANSWER = "Dolores Park"
MODULES = ["textwrap", "json.decoder", "argparse"]


def count(text: str) -> int:
    return len(load_tokenizer("smollm2-135m")(text, add_special_tokens=False)["input_ids"])


def flat_sentences(compressor: EDUSelectCompressor, tree: EDUTree) -> tuple[str, int]:
    """Baseline: rank sentences alone and keep the best while they fit (no tree, no headings)."""
    sents = tree.nodes("sentence")
    scores = compressor.score(QUESTION, [s.text for s in sents])
    kept, used = [], 0
    for score, sent in sorted(zip(scores, sents), key=lambda x: -x[0]):
        if used + count(sent.text) <= compressor.budget:
            kept.append(sent)
            used += count(sent.text)
    return " ".join(s.text for s in sorted(kept, key=lambda s: s.start)), used


def needle_bench(n_essays: int, budgets: list[int]) -> None:
    essays = paul_graham_essays()[:n_essays]
    print(f"\n== needle QA, {len(essays)} essays x 3 depths ==")
    print(f"{'budget':>6} | {'EDU-select recall':>17} {'ratio':>6} {'s':>5} | {'flat-sentence recall':>20} {'ratio':>6} {'s':>5}")
    for budget in budgets:
        compressor = EDUSelectCompressor(budget=budget)
        stats = {"edu": [0, 0.0, 0.0], "flat": [0, 0.0, 0.0]}
        cases = 0
        for essay in essays:
            for depth in (0.1, 0.5, 0.9):
                cut = essay.find(". ", int(len(essay) * depth)) + 1 or len(essay) // 2
                doc = Document(insert_needle(essay, cut)[0])
                before = count(doc.text)
                tree_s, tree = timed(build_edu_tree, doc)  # built once, shared by both (its time is EDU-select's)
                select_s, context = timed(compressor.run, QUESTION, [tree.root])
                stats["edu"][0] += ANSWER in context.metadata["linearized"]
                stats["edu"][1] += context.ratio
                stats["edu"][2] += tree_s + select_s
                seconds, (text, used) = timed(flat_sentences, compressor, tree)
                stats["flat"][0] += ANSWER in text
                stats["flat"][1] += before / max(used, 1)
                stats["flat"][2] += seconds
                cases += 1
        e, f = stats["edu"], stats["flat"]
        print(f"{budget:>6} | {e[0] / cases:>17.2f} {e[1] / cases:>6.1f} {e[2] / cases:>5.1f} | "
              f"{f[0] / cases:>20.2f} {f[1] / cases:>6.1f} {f[2] / cases:>5.1f}")


def fixed_windows(text: str, max_tokens: int) -> list[int]:
    """Baseline: 0-based start rows of windows of whole lines up to ``max_tokens`` tokens."""
    starts, used = [0], 0
    for row, line in enumerate(text.splitlines(keepends=True)):
        n = count(line)
        if used and used + n > max_tokens:
            starts.append(row)
            used = 0
        used += n
    return starts


def at_def(lines: list[str], rows: list[int]) -> float:
    """Share of chunk starts that fall on a def/class/decorator line."""
    return sum(bool(re.match(r"\s*(def|class|async def|@)", lines[r])) for r in rows) / len(rows)


def code_bench(max_tokens: int) -> None:
    print(f"\n== code chunking, max_tokens={max_tokens} ==")
    print(f"{'module':>14} {'lines':>6} | {'units: chunks':>13} {'at def':>7} {'llm cuts':>8} {'s':>6} | {'fixed: chunks':>13} {'at def':>7}")
    for name in MODULES:
        source = inspect.getsource(importlib.import_module(name))
        lines = source.splitlines()
        seconds, chunks = timed(CodeChunker(max_tokens=max_tokens).run, [Document(source, metadata={"language": "python"})])
        rows = [c.metadata["start_line"] - 1 for c in chunks]
        llm = sum(c.metadata["split"] == "llm" for c in chunks)
        fixed = fixed_windows(source, max_tokens)
        print(f"{name:>14} {len(lines):>6} | {len(chunks):>13} {at_def(lines, rows):>7.2f} {llm:>8} {seconds:>6.1f} | {len(fixed):>13} {at_def(lines, fixed):>7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--essays", type=int, default=6)
    parser.add_argument("--budgets", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--max-tokens", type=int, default=512)
    args = parser.parse_args()
    needle_bench(args.essays, args.budgets)
    code_bench(args.max_tokens)
