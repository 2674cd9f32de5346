"""LongCodeZip's picture: each source with kept lines on green and dropped lines struck through."""

from __future__ import annotations

import html
from collections.abc import Sequence

from ragpress.compressors.longcodezip.steps import line_spans
from ragpress.core.types import Chunk, Context, Document


def highlight_html(context: Context, sources: str | Sequence[Chunk]) -> str:
    """An HTML view of each source with kept lines on green and dropped lines struck through on
    red (blank lines plain), for notebooks: ``IPython.display.HTML(highlight_html(ctx, code))``."""
    if isinstance(sources, str):
        sources = [Chunk.of(Document(sources), 0, len(sources))]
    parts = [f"<div style='font-family:monospace;font-size:12px'><p>{context.tokens_before} &rarr; {context.tokens_after} tokens "
             f"(ratio {context.ratio:.2f}x)</p>"]
    for chunk in sources:
        covered = [(p.start, p.end) for p in context.pieces if p.doc_id == chunk.doc_id]
        rows = []
        for a, b in line_spans(chunk.text):
            line = chunk.text[a:b]
            start, end = chunk.start + a, chunk.start + b
            keep = any(s <= start and end <= e for s, e in covered)
            style = "" if not line.strip() else ("background:#d9f2d9" if keep else "background:#f9dcdc;color:#888;text-decoration:line-through")
            rows.append(f"<div style='white-space:pre;{style}'>{html.escape(line) or '&nbsp;'}</div>")
        parts.append("<div style='border:1px solid #ccc;margin:6px 0;padding:4px'>" + "".join(rows) + "</div>")
    return "".join(parts) + "</div>"
