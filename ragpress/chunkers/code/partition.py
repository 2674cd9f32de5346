"""Cutting one code file into chunks within a token limit: units first, then LLM partition points,
then statement boundaries, fixed windows of lines and, for a line longer than the limit, token
boundaries (steps 1-2 of :mod:`ragpress.chunkers.code.stage`); then neighbouring pieces packed
together up to the limit (step 3).

Speed: the file is tokenized once, with offsets; a row range's count for every decision is the
number of its tokens in that pass (:meth:`CodeFile.estimate`). A piece tokenized alone can differ by
a token or two at its edges, so decisions keep :data:`SLACK` tokens spare, and the final chunks are
counted exactly in one batch: a chunk still over the limit (rare) is unpacked or cut again with exact
counts, so every token count is exact and every chunk within the limit.

Batching: the steps that may need the LLM (:meth:`CodeFile.units`, :meth:`~CodeFile.add`,
:meth:`~CodeFile.partition`, :meth:`~CodeFile.finish`) are generators of :data:`Asks`: they yield a
partition prompt and receive the reply, so many files advance in lockstep and each round's prompts
of all of them go to the LLM in one batch (:func:`ragpress.core.lockstep.run_lockstep`)."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import re
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from tqdm.auto import tqdm

from ragpress.chunkers.base import token_counts, token_spans
from ragpress.chunkers.code.grammar import find_units
from ragpress.core.loaders import load_causal_lm, load_tokenizer
from ragpress.core.types import Chunk, Document

if TYPE_CHECKING:
    from ragpress.chunkers.code.stage import CodeChunker

_LONE_CR = re.compile(r"\r(?!\n)")
_PROMPT = (
    "Below is {language} code with line numbers. Split it into chunks of at most {limit} tokens each, "
    "so that every chunk is one logical unit (a routine, a label block, a section) wherever possible. "
    "Reply only with the line numbers where new chunks begin, separated by commas.\n\n{code}"
)
SLACK = 4  # tokens kept spare when deciding by the whole-file count (a piece alone counts a token or two more)
T = TypeVar("T")
Asks = Generator[str, str, T]  # a step that yields partition prompts, receives the LLM's replies and returns a T



class CodeFile:
    """One file's chunking state: its lines, statement depths per row and the chunks so far."""

    def __init__(self, settings: CodeChunker, document: Document, language: str):
        self.settings, self.document, self.language = settings, document, language
        self.text = _LONE_CR.sub("\n", document.text)  # rows as tree-sitter counts them; same length, same offsets
        self.offsets = [m.start() for m in re.finditer(r"[^\n]*\n|[^\n]+$", self.text)] + [len(self.text)]
        self.lines = [document.text[a:b] for a, b in zip(self.offsets, self.offsets[1:])]
        starts = [a for a, _ in self.tokenizer(document.text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]]
        rows = np.searchsorted(self.offsets, np.asarray(starts, dtype=np.int64), side="right") - 1
        self.cum = [0, *itertools.accumulate(np.bincount(rows.clip(0), minlength=len(self.lines))[: len(self.lines)].tolist())]
        self.exact = False  # True while a piece found over the limit is cut again with exact counts
        self.depth: dict[int, int] = {}
        self.chunks: list[Chunk] = []
        self._tokens: dict[tuple[int, int], int] = {}
        self._asked_until = -1

    @property
    def tokenizer(self):
        return load_tokenizer(self.settings.tokenizer)

    def tokens(self, a: int, b: int) -> int:
        """The exact token count of rows ``a:b``."""
        if (a, b) not in self._tokens:
            text = self.document.text[self.offsets[a] : self.offsets[b]]
            self._tokens[(a, b)] = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._tokens[(a, b)]

    def estimate(self, a: int, b: int) -> int:
        """Rows ``a:b``'s tokens in the file's one tokenization (those that start in these rows)."""
        return self.cum[b] - self.cum[a]

    def within(self, a: int, b: int, limit: int) -> bool:
        """Rows ``a:b`` hold at most ``limit`` tokens: by the estimate with :data:`SLACK` spare, or
        in exact mode counted exactly, where rows whose estimate is far over (more than twice, plus
        slack) are refused uncounted, so no call tokenizes a large remainder."""
        if not self.exact:
            return self.estimate(a, b) + SLACK <= limit
        return self.estimate(a, b) <= 2 * limit + 32 and self.tokens(a, b) <= limit

    def fits(self, a: int, b: int) -> bool:
        return self.within(a, b, self.settings.max_tokens)

    def last_within(self, a: int, rows: Sequence[int], limit: int, exact: bool = True) -> int:
        """How many of the ascending ``rows`` keep rows ``a:row`` within ``limit`` tokens (a prefix:
        counts grow with the row), by binary search over the rows the estimate leaves possible
        (``exact=False``: by the estimate alone)."""
        lo, hi = 0, bisect.bisect_right(rows, 0, key=lambda row: self.estimate(a, row) > (2 * limit + 32 if exact else limit))
        if not exact:
            return hi
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if self.within(a, rows[mid], limit) else (lo, mid)
        return lo

    def index_depths(self, root) -> None:
        """Shallowest depth of a named node that starts each row at its first non-blank column
        (containers such as a block, which start where their first statement does, do not count).
        Nodes within one row are not entered, so the walk visits lines, not tokens. Walked with a stack: one long expression nests deeper than Python's recursion limit."""
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            row, column = node.start_point
            container = node.named_child_count and node.named_children[0].start_point == node.start_point
            if not container and row < len(self.lines) and column == len(self.lines[row]) - len(self.lines[row].lstrip()):
                self.depth[row] = min(self.depth.get(row, depth), depth)
            if node.end_point.row > row:  # a one-row node's descendants cannot start its row shallower
                stack.extend((child, depth + 1) for child in node.named_children)

    def units(self, node, first: int, last: int, parent: str, parent_kind: str = "") -> Asks[None]:
        """Chunks for rows ``first:last`` of ``node``: its units, and the code between them."""
        cursor = first
        for unit in find_units(node):
            end_row = unit.end_point.row + (unit.end_point.column > 0 or unit.end_point.row == unit.start_point.row)
            start, end = max(unit.start_point.row, cursor), min(end_row, last)
            if start >= end:
                continue  # shares its row with the unit before; already covered there
            yield from self.add(cursor, start, "statements", "", parent)
            definition = unit.child_by_field_name("definition") or unit
            name = definition.child_by_field_name("name")
            name = name.text.decode("utf-8", "replace") if name is not None else ""
            kind = "class" if "class" in definition.type else "method" if parent_kind == "class" and "function" in definition.type else definition.type.split("_")[0]
            if not self.fits(start, end) and find_units(definition):
                yield from self.units(definition, start, end, name, kind)
            else:
                yield from self.add(start, end, kind, name, parent)
            cursor = end
        yield from self.add(cursor, last, "statements", "", parent)

    def add(self, a: int, b: int, kind: str, name: str, parent: str) -> Asks[None]:
        """Chunks for rows ``a:b`` (blank rows at the ends dropped), partitioned when over the limit."""
        a, b = self.trim(a, b)
        if a == b:
            return
        pieces = [(a, b, "unit")] if self.fits(a, b) else (yield from self.partition(a, b))
        pieces = [(*self.trim(x, y), split) for x, y, split in pieces]
        for part, (x, y, split) in enumerate(p for p in pieces if p[0] < p[1]):
            meta = {"language": self.language, "kind": kind, "name": name, "parent": parent, "split": split,
                    "start_line": x + 1, "end_line": y, "part": part}  # fmt: skip
            if self.fits(x, y):  # counted exactly in finish()
                self.chunks.append(Chunk.of(self.document, self.offsets[x], self.offsets[y], metadata=meta))
            else:  # one line over the limit: cut it at token boundaries
                self.chunks += [Chunk.of(self.document, *span, token_count=count, metadata=meta | {"split": "tokens"})
                                for span, count in token_spans(self.document.text, self.offsets[x], self.offsets[y], self.tokenizer,
                                                               self.settings.max_tokens)]

    def trim(self, a: int, b: int) -> tuple[int, int]:
        while a < b and not self.lines[a].strip():
            a += 1
        while b > a and not self.lines[b - 1].strip():
            b -= 1
        return a, b

    def partition(self, a: int, b: int) -> Asks[list[tuple[int, int, str]]]:
        """Cut rows ``a:b`` at LLM partition points, repaired, with structural/fixed fallbacks."""
        pieces, cursor, points = [], a, []
        bar = tqdm(total=b - a, desc="LLM partitions", unit="line", disable=b - a < 500, leave=False)
        while not self.fits(cursor, b):
            if not points and cursor >= self._asked_until:
                window = self.window(cursor, b)
                points = yield from self.ask(cursor, window)
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

    def ask(self, a: int, b: int) -> Asks[list[int]]:
        """Partition rows proposed by the LLM for rows ``a:b`` (the prompt is yielded, the reply sent
        back), repaired: numbers outside the window, duplicates and disorder are dropped or sorted
        (1-based line numbers in the reply)."""
        code = "".join(f"{row + 1:>5} | {self.lines[row]}" for row in range(a, b))
        prompt = _PROMPT.format(language=self.language, limit=self.settings.max_tokens, code=code)
        reply = yield prompt
        return sorted({int(n) - 1 for n in re.findall(r"\d+", reply) if a < int(n) - 1 < b})

    def fallback(self, a: int, limit: int) -> tuple[int, str]:
        """The furthest row in ``(a, limit]`` that keeps rows ``a:row`` within the limit: first among
        the shallowest statement starts, else any row (a fixed window of whole lines). Only the rows
        the estimate leaves possible are looked at, so a cut costs the same anywhere in a long file."""
        reach = self.last_within(a, range(a + 1, limit), 2 * self.settings.max_tokens + 32, exact=False)
        candidates = range(a + 1, a + 1 + reach)
        for depth in sorted({self.depth[r] for r in candidates if r in self.depth}):
            row = self.furthest(a, [r for r in candidates if self.depth.get(r) == depth])
            if row is not None:
                return row, "statement"
        return self.furthest(a, range(a + 1, limit + 1)) or a + 1, "fixed"

    def furthest(self, a: int, rows: list[int]) -> int | None:
        """The last of the ascending ``rows`` that still fits after ``a``, or None."""
        lo = self.last_within(a, rows, self.settings.max_tokens)
        return rows[lo - 1] if lo else None

    def window(self, a: int, b: int) -> int:
        """The end row of the code shown to the LLM from row ``a``: up to ``2 * max_tokens`` tokens
        (and half the LLM's context), at least one row."""
        limit = min(2 * self.settings.max_tokens, load_causal_lm(self.settings.model).max_length // 2)
        rows = range(a + 1, b + 1)
        lo = self.last_within(a, rows, limit)
        return rows[lo - 1] if lo else a + 1

    def finish(self) -> Asks[list[Chunk]]:
        """The chunks, packed (``settings.pack``) and counted exactly in one batch; a chunk over
        the limit is unpacked, or a single piece cut again in exact mode."""
        groups = self.pack(self.chunks) if self.settings.pack else [[c] for c in self.chunks]
        texts = [self.document.text[g[0].start : g[-1].end] for g in groups]
        out = []
        for group, count in zip(groups, token_counts(self.tokenizer, texts)):
            if count <= self.settings.max_tokens:
                out.append(_merged(self.document, group, count))
            else:  # a packed group is unpacked, a single piece cut again
                for piece in group:
                    out += yield from self.recount(piece)
        return out

    def recount(self, piece: Chunk) -> Asks[list[Chunk]]:
        """``piece`` with its exact count, cut again with exact counts if it is over the limit."""
        if piece.token_count is not None:
            return [piece]
        a, b, meta = piece.metadata["start_line"] - 1, piece.metadata["end_line"], piece.metadata
        if self.tokens(a, b) <= self.settings.max_tokens:
            return [dataclasses.replace(piece, token_count=self.tokens(a, b))]
        kept, self.chunks, self.exact = self.chunks, [], True
        yield from self.add(a, b, meta["kind"], meta["name"], meta["parent"])
        cut, self.chunks, self.exact = self.chunks, kept, False
        return [c if c.token_count is not None else dataclasses.replace(c, token_count=self.tokens(c.metadata["start_line"] - 1, c.metadata["end_line"])) for c in cut]

    def pack(self, pieces: list[Chunk]) -> list[list[Chunk]]:
        """Neighbouring pieces grouped greedily while the group fits (paper Sec. "Structure-Based",
        multiple modules per chunk): only across unit boundaries, never inside a partitioned unit
        nor with a piece cut at token boundaries."""
        groups: list[list[Chunk]] = []
        for piece in pieces:
            last = groups[-1][-1] if groups else None
            if (last is not None and last.token_count is None and piece.token_count is None and last.metadata["split"] == "unit"
                    and piece.metadata["part"] == 0 and self.fits(groups[-1][0].metadata["start_line"] - 1, piece.metadata["end_line"])):
                groups[-1].append(piece)
            else:
                groups.append([piece])
        return groups


def _merged(document: Document, group: list[Chunk], count: int) -> Chunk:
    """One chunk for the consecutive pieces of ``group``; a packed one has ``kind="units"``, the
    names of its units in ``names`` and the common parent, if any."""
    first, last = group[0].metadata, group[-1].metadata
    names = [c.metadata["name"] for c in group if c.metadata["name"]]
    meta = dict(first, names=names, end_line=last["end_line"], split=last["split"])
    if len(group) > 1:
        parents = {c.metadata["parent"] for c in group}
        meta |= {"kind": "units", "name": "", "parent": parents.pop() if len(parents) == 1 else ""}
    return Chunk.of(document, group[0].start, group[-1].end, token_count=count, metadata=meta)

