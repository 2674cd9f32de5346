"""See ARC-Encoder's compression: which tokens each soft row pools (§3.2: groups of consecutive
tokens), and the quality benchmark's losses as a bar chart."""

from __future__ import annotations

from ragpress.core.extras import require

require("matplotlib", what="ARC-Encoder pictures")

import html
from collections.abc import Mapping

from ragpress.compressors.arc_encoder import group_sizes
from ragpress.core.loaders import load_tokenizer

SHADES = ("#ffe08a", "#bde0fe")


def pooling_html(text: str, ratio: int = 4, tokenizer: str = "smollm2-135m", max_tokens: int = 256) -> str:
    """HTML of ``text`` with the tokens that become one soft row shaded alike (alternating colours;
    a row's number shows on hover). Windows of ``max_tokens`` are pooled apart, as
    :class:`~ragpress.compressors.arc_encoder.ArcEncoder` does. Show it with ``IPython.display.HTML``."""
    tok = load_tokenizer(tokenizer)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    parts, row = [], 0
    for start in range(0, len(ids), max_tokens):
        cursor = start
        for size in group_sizes(min(max_tokens, len(ids) - start), ratio):
            piece = html.escape(tok.decode(ids[cursor : cursor + size]))
            parts.append(f'<span title="row {row}" style="background:{SHADES[row % 2]}">{piece}</span>')
            cursor, row = cursor + size, row + 1
    heading = f"<h4>{len(ids)} tokens -> {row} soft rows at ratio {ratio} (plus one &lt;Cont&gt; row per window)</h4>"
    return heading + f'<p style="white-space:pre-wrap">{"".join(parts)}</p>'


def plot_quality(results: Mapping[str, Mapping[str, float]], ax=None):
    """Bar chart of ``benchmarks/arc_quality.py --json`` numbers: mean NLL per task and context;
    returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    tasks = [t for t in ("lm", "chat") if t in results]
    conditions = list(results[tasks[0]])
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3))
    width = 0.8 / len(conditions)
    for i, name in enumerate(conditions):
        ax.bar([t + i * width for t in range(len(tasks))], [results[t][name] for t in tasks], width, label=name)
    ax.set_xticks([t + 0.4 - width / 2 for t in range(len(tasks))], [f"{t} continuation" for t in tasks])
    ax.set_ylabel("NLL per token (nats)")
    ax.legend(title="context", fontsize=8)
    fig.tight_layout()
    return fig
