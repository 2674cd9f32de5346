"""See what RetroLM read: which KV pages each (re-)selection chose as generation went on. For the
text of the pages read at the first selection, :func:`ragpress.compressors.gemfilter.viz.highlight_html`
works on a RetroLM answer too (``highlight_html(answer.context, chunks)``)."""

from __future__ import annotations

from ragpress.core.extras import require

require("matplotlib", what="RetroLM pictures")

from ragpress.core.types import Answer


def plot_pages(answer: Answer, ax=None):
    """A matplotlib figure: one row per selection (labelled by the generation step it took effect at),
    one column per page of the context, dark where the page was in the cache."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    trace, pages = answer.context.metadata.get("trace"), answer.context.metadata.get("pages")
    if not trace or not pages:
        raise ValueError("The answer carries no RetroLM trace; pass an Answer from RetroLM.run or PagedContext.answer.")
    grid = np.zeros((len(trace), pages))
    for row, selection in enumerate(trace):
        grid[row, selection["pages"]] = 1
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(min(14, 2 + pages * 0.15), 1 + 0.35 * len(trace)))
    ax.imshow(grid, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(trace)), [f"step {s['step']}" for s in trace])
    ax.set_xlabel("page (context order)")
    ax.set_title(f"RetroLM pages read: {answer.context.tokens_after} of {answer.context.tokens_before} context tokens at step 0")
    fig.tight_layout()
    return fig
