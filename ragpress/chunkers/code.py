"""Code chunking at syntactic units, with an LLM choosing partition points where syntax cannot.

Glasz et al., "Can LLMs Replace Humans During Code Chunking?" (arXiv 2506.19897, 2025). The paper
compares naive (whole file, fixed-length), structure-based (single module, multiple modules) and
expert-driven (human, LLM) partitions of legacy MUMPS and assembly files under token limits of
512-4096, and finds that partition points chosen by an LLM shown the code match human experts and
give better downstream documentation. We combine the two families:

1. Structure (paper Sec. "Structure-Based"): with a tree-sitter grammar, the file is cut at its
   syntactic units (functions, classes, methods); code between units (imports, constants, a class
   header) becomes chunks of its own, so the chunks cover the whole file. A unit over
   ``max_tokens`` is cut at its inner units if it has any (a class at its methods).
2. LLM partitions (paper Sec. "Expert-Driven"/LLM partitions): a unit still over the limit, or a
   whole file in a language without a grammar (the paper's MUMPS and assembly), is shown to
   ``model`` as numbered lines and the model replies with the line numbers where new chunks begin.
   Replies are repaired (out-of-range, duplicate and unordered numbers dropped or sorted); where
   none is usable, or a piece would still be over the limit, the cut falls back to the shallowest
   statement boundary that fits (column-0 lines and lines after blank lines without a grammar),
   then to a fixed window of whole lines. Nothing raises on a bad reply.

Deviations: token counts use ``tokenizer`` (default the SmolLM2 tokenizer, the paper used GPT-4o's);
the LLM sees at most ``2 * max_tokens`` tokens of code at a time (the paper's models saw whole
files), and we could not retrieve the paper's exact prompt wording, so ours paraphrases its task.
Lines are atomic: a single line longer than ``max_tokens`` stays whole (flagged ``over_budget``).

Chunk metadata: ``language``, ``kind`` (function/class/method/... or ``statements`` for code between
units, ``file`` without a grammar), ``name``, ``parent`` (enclosing unit), ``start_line``/``end_line``
(1-based, inclusive), ``part`` (index within a partitioned unit) and ``split``, how the chunk's end
was chosen: ``unit`` (end of the unit or gap), ``llm``, ``statement`` or ``fixed`` (fallbacks).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import re
from pathlib import PurePath
from typing import ClassVar

from tqdm.auto import tqdm

from ragpress.chunkers.base import Chunker
from ragpress.core.extras import require
from ragpress.core.loaders import load_causal_lm, load_tokenizer
from ragpress.core.prompt import user_turns
from ragpress.core.types import Chunk, Document

EXTENSIONS = {
    ".py": "python", ".js": "javascript", ".ts": "typescript", ".tsx": "tsx", ".go": "go", ".rs": "rust",
    ".java": "java", ".c": "c", ".h": "c", ".cpp": "cpp", ".cc": "cpp", ".rb": "ruby", ".php": "php",
    ".m": "mumps", ".mps": "mumps", ".asm": "assembly", ".s": "assembly", ".mlc": "assembly",
}  # fmt: skip
GRAMMARS = {
    "typescript": "tree_sitter_typescript:language_typescript",
    "tsx": "tree_sitter_typescript:language_tsx",
    "php": "tree_sitter_php:language_php",
    "csharp": "tree_sitter_c_sharp:language",
}
UNIT_TYPES = re.compile(r"decorated_definition|\w*(function|method|class|interface|struct|impl|trait|enum|constructor)_(definition|declaration|item)")
_PROMPT = (
    "Below is {language} code with line numbers. Split it into chunks of at most {limit} tokens each, "
    "so that every chunk is one logical unit (a routine, a label block, a section) wherever possible. "
    "Reply only with the line numbers where new chunks begin, separated by commas.\n\n{code}"
)


@functools.cache
def load_parser(language: str, spec: str = ""):
    """A tree-sitter parser for ``language``, or ``None`` when no grammar is installed. ``spec``
    is ``"module"`` or ``"module:function"``; by default ``tree_sitter_<language>`` is tried, then
    ``tree-sitter-language-pack`` 0.x (1.x changed its API and is not used)."""
    require("tree_sitter", what="Code chunking")
    import tree_sitter

    module_name, _, function = (spec or GRAMMARS.get(language, f"tree_sitter_{language}")).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    if module is not None:
        if not hasattr(module, function or "language"):
            raise ValueError(f"Grammar module {module_name!r} has no function {function or 'language'!r}; map the language as 'module:function'.")
        return tree_sitter.Parser(tree_sitter.Language(getattr(module, function or "language")()))
    try:
        if importlib.metadata.version("tree-sitter-language-pack").startswith("0."):
            from tree_sitter_language_pack import get_parser

            return get_parser(language)
    except (importlib.metadata.PackageNotFoundError, LookupError, ValueError):
        pass
    return None


@dataclasses.dataclass
class CodeChunker(Chunker):
    """Settings: ``language`` ("" = ``document.metadata["language"]`` or the suffix of
    ``metadata["path"]``), ``max_tokens`` per chunk (paper: 512-4096), ``model``: the LLM that
    partitions, ``tokenizer`` that counts, ``grammars`` mapping a language to a ``"module[:function]"``
    grammar."""

    method: ClassVar[str] = "code"
    language: str = ""
    max_tokens: int = 1024
    model: str = "smollm2-135m"
    tokenizer: str = "smollm2-135m"
    grammars: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.max_tokens, int) or self.max_tokens < 8:
            raise ValueError(f"max_tokens must be an int of at least 8, got {self.max_tokens!r}.")

    def ask_llm(self, prompt: str) -> str:
        """The LLM's reply to one partition prompt (greedy)."""
        return load_causal_lm(self.model).chat_batch(user_turns([prompt]), max_new_tokens=64, desc="LLM prompts")[0]

    def language_of(self, document: Document) -> str:
        language = self.language or document.metadata.get("language", "")
        if not language and document.metadata.get("path"):
            language = EXTENSIONS.get(PurePath(str(document.metadata["path"])).suffix.lower(), "")
        if not language:
            raise ValueError(
                f"Unknown language for document {document.id!r}: set CodeChunker(language=...) or put "
                "'language' or 'path' in the document's metadata."
            )
        return language.lower().replace("-", "_").replace("c++", "cpp").replace("c#", "csharp")

    def chunk(self, document: Document) -> list[Chunk]:
        language = self.language_of(document)
        job = _File(self, document, language)
        parser = load_parser(language, self.grammars.get(language, ""))
        if parser is None:
            job.depth = {r: 0 if line[:1].strip() else 1 for r, line in enumerate(job.lines) if line.strip() and (r == 0 or line[:1].strip() or not job.lines[r - 1].strip())}
            job.add(0, len(job.lines), "file", "", "")
        else:
            tree = parser.parse(document.text.encode("utf-8"))
            job.index_depths(tree.root_node)
            job.units(tree.root_node, 0, len(job.lines), "")
        return job.chunks


class _File:
    """One file's chunking state: its lines, statement depths per row and the chunks so far."""

    def __init__(self, settings: CodeChunker, document: Document, language: str):
        self.settings, self.document, self.language = settings, document, language
        self.offsets = [m.start() for m in re.finditer(r"[^\n]*\n|[^\n]+$", document.text)] + [len(document.text)]
        self.lines = [document.text[a:b] for a, b in zip(self.offsets, self.offsets[1:])]
        self.depth: dict[int, int] = {}
        self.chunks: list[Chunk] = []
        self._tokens: dict[tuple[int, int], int] = {}
        self._asked_until = -1

    def tokens(self, a: int, b: int) -> int:
        if (a, b) not in self._tokens:
            text = self.document.text[self.offsets[a] : self.offsets[b]]
            self._tokens[(a, b)] = len(load_tokenizer(self.settings.tokenizer)(text, add_special_tokens=False)["input_ids"])
        return self._tokens[(a, b)]

    def fits(self, a: int, b: int) -> bool:
        return self.tokens(a, b) <= self.settings.max_tokens

    def index_depths(self, node, depth: int = 0) -> None:
        """Shallowest depth of a named node that starts each row at its first non-blank column
        (containers such as a block, which start where their first statement does, do not count)."""
        row, column = node.start_point
        container = node.named_child_count and node.named_children[0].start_point == node.start_point
        if not container and row < len(self.lines) and column == len(self.lines[row]) - len(self.lines[row].lstrip()):
            self.depth[row] = min(self.depth.get(row, depth), depth)
        for child in node.named_children:
            self.index_depths(child, depth + 1)

    def units(self, node, first: int, last: int, parent: str, parent_kind: str = "") -> None:
        """Chunks for rows ``first:last`` of ``node``: its units, and the code between them."""
        cursor = first
        for unit in _find_units(node):
            end_row = unit.end_point.row + (unit.end_point.column > 0 or unit.end_point.row == unit.start_point.row)
            start, end = max(unit.start_point.row, cursor), min(end_row, last)
            if start >= end:
                continue  # shares its row with the unit before; already covered there
            self.add(cursor, start, "statements", "", parent)
            definition = unit.child_by_field_name("definition") or unit
            name = definition.child_by_field_name("name")
            name = name.text.decode("utf-8", "replace") if name is not None else ""
            kind = "class" if "class" in definition.type else "method" if parent_kind == "class" and "function" in definition.type else definition.type.split("_")[0]
            if not self.fits(start, end) and _find_units(definition):
                self.units(definition, start, end, name, kind)
            else:
                self.add(start, end, kind, name, parent)
            cursor = end
        self.add(cursor, last, "statements", "", parent)

    def add(self, a: int, b: int, kind: str, name: str, parent: str) -> None:
        """Chunks for rows ``a:b`` (blank rows at the ends dropped), partitioned when over the limit."""
        a, b = self.trim(a, b)
        if a == b:
            return
        pieces = [(a, b, "unit")] if self.fits(a, b) else self.partition(a, b)
        pieces = [(*self.trim(x, y), split) for x, y, split in pieces]
        for part, (x, y, split) in enumerate(p for p in pieces if p[0] < p[1]):
            meta = {"language": self.language, "kind": kind, "name": name, "parent": parent, "split": split,
                    "start_line": x + 1, "end_line": y, "part": part, "over_budget": not self.fits(x, y)}  # fmt: skip
            chunk = Chunk.of(self.document, self.offsets[x], self.offsets[y], token_count=self.tokens(x, y), metadata=meta)
            self.chunks.append(chunk)

    def trim(self, a: int, b: int) -> tuple[int, int]:
        while a < b and not self.lines[a].strip():
            a += 1
        while b > a and not self.lines[b - 1].strip():
            b -= 1
        return a, b

    def partition(self, a: int, b: int) -> list[tuple[int, int, str]]:
        """Cut rows ``a:b`` at LLM partition points, repaired, with structural/fixed fallbacks."""
        pieces, cursor, points = [], a, []
        bar = tqdm(total=b - a, desc="LLM partitions", unit="line", disable=b - a < 500, leave=False)
        while not self.fits(cursor, b):
            if not points and cursor >= self._asked_until:
                window = self.window(cursor, b)
                points = self.ask(cursor, window)
                self._asked_until = window
            if points and self.fits(cursor, points[0]):
                cut, split = points.pop(0), "llm"
            else:
                cut, split = self.fallback(cursor, points[0] if points else b)
                points = [p for p in points if p > cut]
            pieces.append((cursor, cut, split))
            bar.update(cut - cursor)
            cursor = cut
        bar.close()
        return [*pieces, (cursor, b, "unit")]

    def ask(self, a: int, b: int) -> list[int]:
        """Partition rows proposed by the LLM for rows ``a:b``, repaired: numbers outside the
        window, duplicates and disorder are dropped or sorted (1-based line numbers in the reply)."""
        code = "".join(f"{row + 1:>5} | {self.lines[row]}" for row in range(a, b))
        prompt = _PROMPT.format(language=self.language, limit=self.settings.max_tokens, code=code)
        reply = self.settings.ask_llm(prompt)
        return sorted({int(n) - 1 for n in re.findall(r"\d+", reply) if a < int(n) - 1 < b})

    def fallback(self, a: int, limit: int) -> tuple[int, str]:
        """The furthest row in ``(a, limit]`` that keeps rows ``a:row`` within the limit: first among
        the shallowest statement starts, else any row (a fixed window of whole lines)."""
        for depth in sorted({self.depth[r] for r in range(a + 1, limit) if r in self.depth}):
            row = self.furthest(a, [r for r in range(a + 1, limit) if self.depth.get(r) == depth])
            if row is not None:
                return row, "statement"
        return self.furthest(a, list(range(a + 1, limit + 1))) or a + 1, "fixed"

    def furthest(self, a: int, rows: list[int]) -> int | None:
        """The last of the ascending ``rows`` that still fits after ``a`` (token counts grow with the row)."""
        lo, hi = 0, len(rows)
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if self.fits(a, rows[mid]) else (lo, mid)
        return rows[lo - 1] if lo else None

    def window(self, a: int, b: int) -> int:
        """The end row of the code shown to the LLM from row ``a``: up to ``2 * max_tokens`` tokens
        (and half the LLM's context), at least one row."""
        limit = min(2 * self.settings.max_tokens, load_causal_lm(self.settings.model).max_length // 2)
        rows = list(range(a + 1, b + 1))
        lo, hi = 0, len(rows)
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if self.tokens(a, rows[mid]) <= limit else (lo, mid)
        return rows[lo - 1] if lo else a + 1


def _find_units(node) -> list:
    """The outermost function/class/method nodes below ``node`` (not crossing another unit)."""
    out = []
    for child in node.named_children:
        if UNIT_TYPES.fullmatch(child.type):
            out.append(child)
        else:
            out.extend(_find_units(child))
    return out
