"""The model-free steps of LongCodeZip (Shi et al., ASE 2025, arXiv:2510.00446): function-level
chunking (Sec. III-A), perplexity-spike block boundaries, the adaptive budget shares and the 0/1
knapsack that picks blocks under a token budget (Sec. III-B), and the kept lines turned back into
exact source spans. :mod:`ragpress.compressors.longcodezip` scores and wires them.

Lines are the atomic unit everywhere: a line is the text between two ``"\\n"`` (without it), and a
span of lines maps back to exact character offsets in the source.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import numpy as np

from ragpress.chunkers.code import UNIT_TYPES, load_parser  # grammar loader and function/class/method node types
from ragpress.core.types import Chunk

# Every language with an installed tree-sitter grammar (tree-sitter-python here; others through
# tree_sitter_<language> or tree-sitter-language-pack 0.x, found by the code chunker's loader) is split
# by its syntax tree; the rest, and code that does not parse, fall back to the definition-line rule
# below, which the official code uses for all languages (its default for unknown ones is Python's).
_WRAPPERS = {"decorated_definition": "definition", "export_statement": "declaration"}  # unwrapped to the definition
_CONTAINER = re.compile(r"class|interface|impl|trait|struct|enum|object|module|namespace")  # members are cut too
_MODIFIERS = r"(?:(?:export|default|public|private|protected|internal|static|final|abstract|async|pub(?:\([\w:]+\))?|unsafe|extern|inline|virtual|override|synchronized|const)\s+)*"
_KEYWORDS = {
    "python": r"(?:async\s+)?(?:def|class)",
    "c_family": r"(?:class|struct|enum|interface|trait|impl|fn|func|function|type\s+\w+\s+struct)",
}
_C_METHOD = r"(?!(?:return|if|else|while|for|switch|case|new|throw|catch|do|sizeof)\b)[\w<>\[\]*&:,.]+(?:\s+[\w<>\[\]*&:,.]+)*\s+\**~?\w+\s*\([^;]*$"
_NAME = re.compile(r"\b(?:def|class|struct|enum|interface|trait|impl|fn|func|function)\s+(\w+)|(\w+)\s*\(")
_COMMENT = {"python": "#", "c_family": "//"}


def language_family(language: str) -> str:
    """``"python"`` for Python and for languages the rule does not know (the official default),
    ``"c_family"`` for brace languages (C, C++, Java, C#, JavaScript, TypeScript, Go, Rust, ...)."""
    brace = {"c", "cpp", "c++", "java", "csharp", "c#", "javascript", "js", "typescript", "ts", "go", "rust", "kotlin", "scala", "swift", "php"}
    return "c_family" if language.lower() in brace else "python"


def definition_pattern(language: str) -> re.Pattern:
    """A line that opens a function, method, class or type in ``language``."""
    family = language_family(language)
    alternatives = [_MODIFIERS + _KEYWORDS[family] + r"\b"]
    if family == "c_family":
        alternatives.append(_MODIFIERS + _C_METHOD)
    return re.compile(r"^[ \t]*(?:" + "|".join(alternatives) + ")")


def line_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every line of ``text``, newline excluded; an empty text has one empty line."""
    spans, start = [], 0
    for match in re.finditer("\n", text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


@dataclass(frozen=True)
class Function:
    """A function-level chunk: lines ``first:last`` (end exclusive) of one source text."""

    first: int
    last: int
    name: str


def split_functions(text: str, language: str = "python") -> tuple[list[Function], str]:
    """Function-level chunking (Sec. III-A): cut the text at the first line of every function or
    class definition (methods included, nested functions kept inside their function), so the
    chunks tile the whole text; code before the first definition is its own chunk. With a
    tree-sitter grammar for ``language`` the text is parsed (decorators and comments right above a
    definition go with it); text that does not parse, and languages without a grammar, are cut at
    lines matching :func:`definition_pattern`, the official code's rule. Returns the chunks and a
    note naming the splitter used."""
    lines = text.split("\n")
    name = language.lower().replace("c++", "cpp").replace("c#", "csharp")
    parser = load_parser(name)
    if parser is None:
        note = f"definition-line regex ({language_family(language)} rule; no tree-sitter grammar for {language!r})"
        starts = _regex_definition_starts(lines, language)
    else:
        root = parser.parse(text.encode("utf-8")).root_node
        if root.has_error:
            note = "definition-line regex: tree-sitter found a syntax error, so the code was cut by line pattern"
            starts = _regex_definition_starts(lines, language)
        else:
            note, starts = f"tree-sitter-{name}", _tree_definition_starts(root, lines)
    cuts = sorted(set(starts) | {0})
    ends = cuts[1:] + [len(lines)]
    return [Function(a, b, starts.get(a, "<module>")) for a, b in zip(cuts, ends)], note


def _tree_definition_starts(root, lines: list[str]) -> dict[int, str]:
    """First row and dotted name of every top-level definition and every member of a class-like one."""
    starts: dict[int, str] = {}

    def visit(block, prefix: str) -> None:
        for node in block.named_children:
            definition = node.child_by_field_name(_WRAPPERS[node.type]) if node.type in _WRAPPERS else node
            if definition is None or not UNIT_TYPES.fullmatch(definition.type):
                continue
            row, above = node.start_point.row, node.prev_named_sibling
            while above is not None and "comment" in above.type and above.end_point.row == row - 1:
                row, above = above.start_point.row, above.prev_named_sibling
            named = definition.child_by_field_name("name")  # C/C++ and impl blocks have none: read it off the line
            label = named.text.decode("utf-8", "replace") if named is not None else _name_of(lines[definition.start_point.row])
            starts[row] = prefix + label
            body = definition.child_by_field_name("body")
            if body is not None and _CONTAINER.search(definition.type):
                visit(body, prefix + label + ".")

    visit(root, "")
    return starts


def _regex_definition_starts(lines: list[str], language: str) -> dict[int, str]:
    pattern, starts = definition_pattern(language), {}
    decorated = False
    for row, line in enumerate(lines):
        if re.match(r"^[ \t]*@\w", line):
            if not decorated:
                starts[row] = "<decorated>"
            decorated = True
            continue
        if pattern.match(line):
            starts[row if not decorated else max(r for r in starts if r < row)] = _name_of(line)
        decorated = False
    return starts


def _name_of(line: str) -> str:
    found = _NAME.search(line)
    return next((g for g in found.groups() if g), "?") if found else "?"


def is_structural(line: str, language: str) -> bool:
    """The official code always keeps a block whose first non-blank line is a definition, a
    comment or a return statement, so compressed functions keep their skeleton."""
    stripped = line.strip()
    return bool(
        definition_pattern(language).match(line)
        or stripped.startswith(_COMMENT[language_family(language)])
        or re.match(r"return\b", stripped)
    )


def spike_blocks(bits: list[float | None], k: float = 0.2) -> list[tuple[int, int]]:
    """Perplexity-based block chunking (Sec. III-B): a line whose perplexity is at least that of
    both neighbours and rises above one of them by the adaptive threshold ``mean + k * std`` of
    the function's line perplexities (log2 of per-line PPL, i.e. mean bits per token; the official
    'std' rule with k=0.2, and 0.5 when fewer than three lines are scored) ends a block. ``None``
    marks a blank line: it is never a spike and counts as equal to the line it neighbours.
    Returns ``(first, last)`` line ranges (end exclusive) that tile the function."""
    valid = np.array([b for b in bits if b is not None and np.isfinite(b) and b > 0])
    threshold = float(valid.mean() + k * valid.std()) if len(valid) >= 3 else 0.5
    cuts = [0]
    for i in range(1, len(bits) - 1):
        here = bits[i]
        if here is None:
            continue
        left = bits[i - 1] if bits[i - 1] is not None else here
        right = bits[i + 1] if bits[i + 1] is not None else here
        rise_left, rise_right = here - left, here - right
        if rise_left >= 0 and rise_right >= 0 and max(rise_left, rise_right) >= threshold:
            cuts.append(i + 1)
    cuts.append(len(bits))
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def adaptive_shares(scores: list[float], sizes: list[int], room: int, beta: float) -> list[float]:
    """Adaptive budget allocation (Sec. III-B): the baseline keep ratio ``room / total`` tilted by
    min-max normalised AMI, ``r_i = r_base * (1 + beta * (2 * s_i - 1))``, clamped to [0, 1] and
    rescaled once so the shares spend the room (the official allocation, counted in tokens)."""
    total = sum(sizes)
    if not sizes or room >= total:
        return [1.0] * len(sizes)
    if room <= 0:
        return [0.0] * len(sizes)
    base = room / total
    low, high = min(scores), max(scores)
    norm = [(s - low) / (high - low) if high > low else 0.5 for s in scores]
    shares = [min(1.0, max(0.0, base * (1 + beta * (2 * n - 1)))) for n in norm]
    spent = sum(r * t for r, t in zip(shares, sizes))
    return [min(1.0, r * room / spent) for r in shares] if spent > 0 else shares


def knapsack(weights: list[int], values: list[float], capacity: int) -> set[int]:
    """Exact 0/1 knapsack by dynamic programming over integer token weights (Sec. III-B: keep the
    blocks of largest total relevance that fit the function's budget). Items of value <= 0 never
    help and are never taken; ties keep the earlier solution. ``O(n * capacity)`` with numpy rows."""
    capacity = max(int(capacity), 0)
    best = np.zeros(capacity + 1)
    took = np.zeros((len(weights), capacity + 1), dtype=bool)
    for i, (weight, value) in enumerate(zip(weights, values)):
        if value <= 0 or not np.isfinite(value) or weight > capacity:
            continue
        candidate = np.full(capacity + 1, -np.inf)
        candidate[weight:] = best[: capacity + 1 - weight] + value
        took[i] = candidate > best
        best = np.where(took[i], candidate, best)
    chosen, room = set(), capacity
    for i in range(len(weights) - 1, -1, -1):
        if took[i, room]:
            chosen.add(i)
            room -= weights[i]
    return chosen


class CodeSource:
    """One input chunk with its lines, language and function-level chunks."""

    def __init__(self, chunk: Chunk, language: str, index: int | None = None):
        self.chunk, self.language = chunk, language
        self.lines = line_spans(chunk.text)
        self.functions, self.note = split_functions(chunk.text, language)
        self.index = index

    def text_of(self, first: int, last: int) -> str:
        return self.chunk.text[self.lines[first][0] : self.lines[last - 1][1]]

    def is_blank(self, line: int) -> bool:
        a, b = self.lines[line]
        return not self.chunk.text[a:b].strip()

    def nonblank(self, function) -> int:
        return sum(not self.is_blank(i) for i in range(function.first, function.last))

    def first_nonblank(self, first: int, last: int) -> str:
        return next((self.chunk.text[slice(*self.lines[i])] for i in range(first, last) if not self.is_blank(i)), "")


def line_of(line_starts: list[int], char: int) -> int:
    """Index of the line holding character ``char``, given the lines' sorted start offsets."""
    return max(bisect.bisect_right(line_starts, char) - 1, 0)


def kept_pieces(sources, units, functions, ami) -> list[Chunk]:
    """Runs of consecutive kept lines, blank lines trimmed at both ends, as exact source spans."""
    pieces = []
    for source in sources:
        kept = sorted({line for u in units if u.chunk == source.index for line in range(u.first, u.last)})
        runs, run = [], []
        for line in kept:
            if run and line != run[-1] + 1:
                runs.append(run)
                run = []
            run.append(line)
        runs += [run] if run else []
        for run in runs:
            lines = [i for i in run if not source.is_blank(i)]
            if not lines:
                continue
            first, last = lines[0], lines[-1]
            owners = [k for k, (s, f) in enumerate(functions) if s is source and f.first <= last and first < f.last]
            chunk = source.chunk
            a, b = source.lines[first][0], source.lines[last][1]
            pieces.append(Chunk(chunk.doc_id, chunk.start + a, chunk.start + b, chunk.text[a:b], score=max(ami[k] for k in owners),
                                metadata={"functions": [functions[k][1].name for k in owners], "lines": (first, last + 1)}))
    return pieces
