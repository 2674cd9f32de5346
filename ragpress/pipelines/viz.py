"""Pictures of a pipeline: its graph, and where a run spent its time and tokens. Each function
returns a matplotlib ``Figure`` (nothing is shown), so notebooks display it and scripts save it."""

from __future__ import annotations

from ragpress.core.extras import require

require("matplotlib", what="Pipeline pictures")

from collections.abc import Sequence

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.figure import Figure

from ragpress.pipelines.graph import Pipeline
from ragpress.pipelines.trace import Result

# One colour per stage kind (tab10), so a graph reads at a glance.
KIND_COLORS = {
    "input": "#d9d9d9",
    "chunker": "#8c564b",
    "retriever": "#1f77b4",
    "fusion": "#17becf",
    "reranker": "#9467bd",
    "compressor": "#ff7f0e",
    "generator": "#2ca02c",
}


def plot_pipeline(pipeline: Pipeline, ax=None) -> Figure:
    """The pipeline's graph, left to right from the query, each stage coloured by its kind."""
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"plot_pipeline takes a Pipeline, got {type(pipeline).__name__}.")
    graph = pipeline.to_networkx()
    for layer, names in enumerate(nx.topological_generations(graph)):
        for name in names:
            graph.nodes[name]["layer"] = layer
    layers = [graph.nodes[name]["layer"] for name in graph]
    widest = max(layers.count(layer) for layer in set(layers))
    fig, ax = _figure(ax, (2.4 * (max(layers) + 1) + 1, 1.2 * widest + 1.5))
    positions = nx.multipartite_layout(graph, subset_key="layer")
    nx.draw_networkx_edges(graph, positions, ax=ax, node_size=4000, arrowsize=15)
    kinds = [graph.nodes[name].get("kind", "stage") for name in graph]
    for name, kind in zip(graph, kinds):
        label = name if name == "query" else f"{name}\n{graph.nodes[name]['type']}"
        box = {"boxstyle": "round,pad=0.5", "facecolor": KIND_COLORS.get(kind, "#7f7f7f"), "alpha": 0.9, "edgecolor": "none"}
        ax.text(*positions[name], label, ha="center", va="center", fontsize=8, bbox=box)
    for kind in dict.fromkeys(kinds):
        ax.scatter([], [], marker="s", color=KIND_COLORS.get(kind, "#7f7f7f"), label=kind)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(set(kinds)), frameon=False, fontsize=8)
    ax.margins(0.15)
    ax.set_axis_off()
    return fig


def plot_trace(results: Result | Sequence[Result], ax=None) -> Figure:
    """Milliseconds per stage on a log scale (the mean over ``results``), each bar labelled with the stage's items
    and tokens in and out (of the first result)."""
    results = [results] if isinstance(results, Result) else list(results)
    if not results or not all(isinstance(r, Result) for r in results):
        raise TypeError("plot_trace takes a Result or a list of them, e.g. pipeline.run(query).")
    first = results[0].trace
    ms = [1000 * sum(r.trace[i].seconds for r in results) / len(results) for i in range(len(first))]
    fig, ax = _figure(ax, (7, 0.5 * len(first) + 1.5))
    bars = ax.barh([t.name for t in first], ms, color="#1f77b4")
    ax.invert_yaxis()
    for bar, t in zip(bars, first):
        note = f" {t.items_in}→{t.items_out} items, {t.tokens} tokens"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, note, va="center", fontsize=8)
    ax.set_xscale("log")  # a generator takes thousands of times longer than a retriever
    ax.set_xlabel(f"milliseconds per query, log scale (mean of {len(results)})")
    ax.set_xlim(min(ms) / 2, max(ms) * 60)
    ax.set_title("Where the time went")
    return fig


def _figure(ax, size: tuple[float, float]):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax
