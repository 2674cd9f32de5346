"""HTML view of a Provence decision: every sentence of every chunk, kept ones highlighted with a
shade that follows P(keep), dropped ones greyed and struck through, rerank score per chunk."""

from __future__ import annotations

import html

from ragpress.core.types import Chunk, Context


def highlight_html(context: Context, chunks: list[Chunk]) -> str:
    """HTML for the ``chunks`` that ``context`` (a :class:`~ragpress.compressors.provence.Provence`
    output for those chunks) was made from; hover a sentence for its mean P(keep)."""
    info = context.metadata.get("chunks")
    if context.metadata.get("method") != "provence" or info is None or len(info) != len(chunks):
        raise ValueError("highlight_html needs the Context that Provence returned for exactly these chunks.")
    threshold = context.metadata["threshold"]
    blocks = []
    for chunk, result in zip(chunks, info):
        score = result["rerank_score"]
        head = f"chunk {result['index']} · rerank {score:.3f}" if score is not None else f"chunk {result['index']} · empty"
        head += "" if result["selected"] else " · not in top_k"
        out, cursor = [], 0
        for s in result["sentences"]:
            out.append(html.escape(chunk.text[cursor : s["start"]]))
            text, tip = html.escape(chunk.text[s["start"] : s["end"]]), f'title="P(keep) {s["prob"]:.3f}"'
            if s["kept"]:
                shade = int(255 - 120 * min(1.0, s["prob"]))
                out.append(f'<mark {tip} style="background:rgb(255,{shade},{shade // 2 + 60})">{text}</mark>')
            else:
                out.append(f'<span {tip} style="color:#999;text-decoration:line-through">{text}</span>')
            cursor = s["end"]
        out.append(html.escape(chunk.text[cursor:]))
        blocks.append(f'<div style="margin:0 0 1em 0"><div style="font-weight:bold">{html.escape(head)}</div>'
                      f'<div style="white-space:pre-wrap">{"".join(out)}</div></div>')
    title = f"Provence · query: {html.escape(context.query)} · threshold {threshold} · tokens {context.tokens_before} → {context.tokens_after}"
    return f'<div style="font-family:sans-serif"><div style="margin-bottom:.5em"><b>{title}</b></div>{"".join(blocks)}</div>'
