"""Code completion in LongCodeZip's setting (Shi et al. 2025, its long-context code-completion
experiments; section numbers not checked here): a long source file with one function body held out; the model writes the missing
lines, scored by exact match and edit similarity (``ragpress.eval.scoring``).

The files are the standard library's top-level modules (always installed, never downloaded), the
function and its body found with ``ast``. The held-out lines are the body's statements after its
docstring (the signature and docstring stay, as the code before the target does in LongCodeZip);
the context is the file with those lines removed, cut to the token budget by whole lines grown
outward from the hole, nearest lines first. Deviation: LongCodeZip's files come from GitHub
repositories (Long Code Completion / RepoQA) and its target is the next line(s); ours is a whole
body, so ``exact_match`` is strict and ``edit_similarity`` is the informative score."""

from __future__ import annotations

import ast
import random
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from ragpress.eval.example import Example
from ragpress.eval.registry import SeededTask, register
from ragpress.eval.text_fit import count_tokens, fit


@lru_cache(maxsize=1)
def stdlib_files() -> tuple[Path, ...]:
    return tuple(sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")))


def holes(source: str, min_lines: int, max_lines: int) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, int, int]]:
    """``(function, first line, end line)`` (0-based, end exclusive) of every function whose body
    after its docstring spans ``min_lines`` to ``max_lines`` whole lines: its first statement opens
    its line (no one-line ``def f(): return x``) and its last closes the function's last line."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        if not body or body[0].lineno <= node.lineno:
            continue
        first, end = body[0].lineno - 1, node.end_lineno
        opens = not lines[first][: body[0].col_offset].strip()
        closes = not lines[end - 1][node.body[-1].end_col_offset :].strip()
        if opens and closes and min_lines <= end - first <= max_lines:
            found.append((node, first, end))
    return found


@dataclass(frozen=True)
class CodeCompletion(SeededTask):
    name: str = "code_completion"
    min_lines: int = 3
    max_lines: int = 25

    def example(self, index: int, context_tokens: int, rng: random.Random, tokenizer: Any) -> Example:
        for path in rng.sample(stdlib_files(), len(stdlib_files())):
            source = path.read_text(errors="ignore")
            # code runs 2 to 5 characters a token: skip files that surely cannot fill the budget
            if len(source) >= 2 * context_tokens and (found := holes(source, self.min_lines, self.max_lines)):
                node, first, end = rng.choice(found)
                lines = source.splitlines(keepends=True)
                if count_tokens(tokenizer, "".join(lines[:first] + lines[end:])) >= context_tokens:
                    break
        else:
            raise ValueError(f"No standard-library file holds {context_tokens} tokens and a function body to hold out; ask for fewer tokens")
        costs = [len(ids) for ids in tokenizer(lines, add_special_tokens=False)["input_ids"]]
        starts = [0, *accumulate(len(line) for line in lines)]

        def window(size: int) -> tuple[int, int]:
            """Lines ``[lo, first)`` and ``[end, hi)`` nearest the hole whose token costs sum to at most ``size``."""
            lo, hi, total = first, end, 0
            while True:
                grew = False
                for side in ("before", "after"):
                    line = lo - 1 if side == "before" else hi
                    if 0 <= line < len(lines) and total + costs[line] <= size:
                        total += costs[line]
                        lo, hi = (line, hi) if side == "before" else (lo, hi + 1)
                        grew = True
                if not grew:
                    return lo, hi

        def build(size: int) -> str:
            lo, hi = window(size)
            return "".join(lines[lo:first] + lines[end:hi])

        context, measured, size = fit(tokenizer, context_tokens, build, context_tokens * 5 // 4)
        lo, hi = window(size)
        header = "".join(lines[node.lineno - 1 : first])
        return Example(
            id=f"{self.name}/{index}", context=context, answers=("".join(lines[first:end]),), task=self.name,
            question=f"Complete the body of {node.name} after these lines:\n{header}",
            metadata={
                "context_tokens": measured, "file": path.name, "function": node.name,
                "held_out": (starts[first], starts[end]), "window": (starts[lo], starts[hi]), "insert_at": starts[first] - starts[lo],
            },
        )


register("code_completion")(CodeCompletion())
