"""See what GemFilter kept: the source chunks as HTML with the selected spans highlighted (the paper's
interpretability point, Sec. 1: a human can read the selected input). Works for any context whose
pieces are spans of the given chunks."""

from __future__ import annotations

import html
from collections.abc import Sequence

from ragpress.core.types import Chunk, Context


def highlight_html(context: Context, chunks: Sequence[Chunk], colour: str = "#ffe08a") -> str:
    """HTML of ``chunks`` with every piece of ``context`` that lies inside one marked; the kept share
    of tokens is in the heading. Display it in a notebook with ``IPython.display.HTML``."""
    blocks = []
    for chunk in chunks:
        inside = sorted(
            (p for p in context.pieces if p.doc_id == chunk.doc_id and chunk.start <= p.start and p.end <= chunk.end),
            key=lambda p: p.start,
        )
        parts, cursor = [], chunk.start
        for piece in inside:
            parts.append(html.escape(chunk.text[cursor - chunk.start : piece.start - chunk.start]))
            parts.append(f'<mark style="background:{colour}">{html.escape(piece.text)}</mark>')
            cursor = piece.end
        parts.append(html.escape(chunk.text[cursor - chunk.start :]))
        blocks.append(f'<p style="white-space:pre-wrap">{"".join(parts)}</p>')
    heading = f"<h4>kept {context.tokens_after} of {context.tokens_before} tokens ({context.ratio:.1f}x)</h4>"
    return heading + "\n".join(blocks)
