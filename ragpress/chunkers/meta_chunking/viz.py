"""Pictures of Meta-Chunking: the per-sentence perplexity curve and where chunks end."""

from __future__ import annotations

from ragpress.core.extras import require

require("matplotlib", what="Meta-Chunking pictures")

from collections.abc import Sequence


def plot_perplexity(values: Sequence[float], ends: Sequence[int], threshold: float | None = None, ax=None):
    """The per-sentence log-perplexity curve with a dashed line after each sentence that ends a
    chunk (``ends``, e.g. :func:`find_minima`); returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    figure, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(6.0, len(values) / 8), 3.2))
    ax.plot(range(len(values)), values, marker="o", markersize=3, linewidth=1, color="tab:blue")
    ends = [e for e in ends if e < len(values) - 1]
    ax.scatter(ends, [values[e] for e in ends], color="tab:red", zorder=3, s=18, label="chunk ends here")
    for end in ends:
        ax.axvline(end + 0.5, color="tab:red", linestyle="--", linewidth=0.8, alpha=0.6)
    title = f"PPL Chunking: {len(ends) + 1} chunks from {len(values)} sentences"
    ax.set(
        xlabel="sentence",
        ylabel="mean token NLL (log PPL, nats)",
        title=title + (f", threshold {threshold:g}" if threshold is not None else ""),
    )
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    if ends:
        ax.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return figure
