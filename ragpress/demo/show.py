"""How the demo prints an answer: the retrieved passages with the kept text highlighted (ANSI
colour on a terminal, ``[[...]]`` markers otherwise), the token count, and two answers side by side."""

from __future__ import annotations

import itertools
import textwrap

from ragpress.core.types import Chunk, Context

KEPT_ANSI, DROPPED_ANSI, RESET = "\033[1;32m", "\033[2m", "\033[0m"


def kept_spans(chunk: Chunk, context: Context) -> list[tuple[int, int]]:
    """The character ranges of ``chunk.text`` that ``context`` kept (its pieces are exact spans of
    the same documents), merged and in order."""
    spans = sorted(
        (max(p.start, chunk.start) - chunk.start, min(p.end, chunk.end) - chunk.start)
        for p in context.pieces
        if p.doc_id == chunk.doc_id and p.start < chunk.end and p.end > chunk.start
    )
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def highlight(chunk: Chunk, context: Context, colour: bool) -> str:
    """``chunk.text`` with what ``context`` kept marked: bold green and the rest dimmed when
    ``colour``, else kept text inside ``[[`` and ``]]``."""
    out, cursor = [], 0
    open_, close = (KEPT_ANSI, RESET) if colour else ("[[", "]]")
    dim = (lambda s: f"{DROPPED_ANSI}{s}{RESET}" if s.strip() else s) if colour else (lambda s: s)
    for a, b in kept_spans(chunk, context):
        out += [dim(chunk.text[cursor:a]), open_, chunk.text[a:b], close]
        cursor = b
    out.append(dim(chunk.text[cursor:]))
    return "".join(out)


def passages(retrieved: list[Chunk], context: Context, colour: bool) -> str:
    """Every retrieved passage that ``context`` kept something of, in full with the kept text
    highlighted, then one line naming the passages it dropped whole."""
    lines, dropped = [], []
    for chunk in retrieved:
        if kept_spans(chunk, context):
            lines.append(f"--- {chunk.doc_id}[{chunk.start}:{chunk.end}]")
            lines.append(highlight(chunk, context, colour).strip("\n"))
        else:
            dropped.append(f"{chunk.doc_id}[{chunk.start}:{chunk.end}]")
    if dropped:
        lines.append(f"--- dropped whole: {', '.join(dropped)}")
    return "\n".join(lines)


def tokens_line(context: Context) -> str:
    return (f"Tokens: {context.tokens_before} retrieved, {context.tokens_after} kept, "
            f"{context.tokens_saved} saved ({context.ratio:.1f}x).")


def side_by_side(left: tuple[str, str], right: tuple[str, str], width: int = 100) -> str:
    """Two ``(heading, text)`` columns, each wrapped to half of ``width``, separated by ``|``."""
    half = (width - 3) // 2

    def rows(texts: list[str]) -> list[tuple[str, str]]:
        a, b = (textwrap.wrap(" ".join(t.split()), half) for t in texts)
        return list(itertools.zip_longest(a, b, fillvalue=""))

    table = rows([left[0], right[0]]) + [("-" * half, "-" * half)] + rows([left[1], right[1]])
    return "\n".join(f"{a.ljust(half)} | {b}".rstrip() for a, b in table)
