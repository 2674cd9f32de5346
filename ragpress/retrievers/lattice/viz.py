"""Pictures of a LATTICE tree and of one query's traversal (networkx + matplotlib)."""

from __future__ import annotations

from ragpress.core.extras import require

require("matplotlib", what="LATTICE pictures")

import textwrap

import networkx as nx

from ragpress.retrievers.lattice import LatticeTrace
from ragpress.retrievers.lattice.tree import SemanticTree


def tree_layout(tree: SemanticTree) -> dict[int, tuple[float, float]]:
    """Leaves spread left to right in depth-first order, parents centred over their children,
    one row per depth (root at the top)."""
    positions: dict[int, tuple[float, float]] = {}
    next_x = 0.0
    for node in nx.dfs_postorder_nodes(tree.graph, tree.root):
        kids = tree.children(node)
        if kids:
            x = sum(positions[c][0] for c in kids) / len(kids)
        else:
            x, next_x = next_x, next_x + 1.0
        positions[node] = (x, 0.0)
    for node, depth in nx.single_source_shortest_path_length(tree.graph, tree.root).items():
        positions[node] = (positions[node][0], -float(depth))
    return positions


def plot_tree(tree: SemanticTree, trace: LatticeTrace | None = None, top: int = 5, label_chars: int = 24, ax=None):
    """The tree, and when ``trace`` is given its traversal: nodes the search LLM scored are coloured
    by path relevance, expanded nodes are outlined, edges into expanded nodes are thick, and the
    ``top`` returned leaves are starred. Internal nodes are labelled with the start of their
    summary. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        width = min(4 + 0.35 * len(tree.leaves()), 40)
        _, ax = plt.subplots(figsize=(width, 2 + 1.6 * tree.depth))
    pos = tree_layout(tree)
    graph = tree.graph
    relevance = trace.path_relevance if trace else {}
    expanded = set(trace.expanded) if trace else set()
    nx.draw_networkx_edges(graph, pos, ax=ax, edge_color="#cccccc", arrows=False, width=0.8)
    walked = [(tree.parent(v), v) for v in expanded if tree.parent(v) is not None]
    nx.draw_networkx_edges(graph, pos, edgelist=walked, ax=ax, edge_color="#1f77b4", arrows=False, width=2.5)
    scored = [v for v in graph if v in relevance]
    others = [v for v in graph if v not in relevance]
    nx.draw_networkx_nodes(graph, pos, nodelist=others, ax=ax, node_size=40, node_color="#eeeeee", edgecolors="#999999")
    if scored:
        drawn = nx.draw_networkx_nodes(graph, pos, nodelist=scored, ax=ax, node_size=90, node_color=[relevance[v] for v in scored],
                                       cmap="Greens", vmin=0.0, vmax=1.0, edgecolors=["#d62728" if v in expanded else "#555555" for v in scored],
                                       linewidths=[2.0 if v in expanded else 0.8 for v in scored])
        ax.figure.colorbar(drawn, ax=ax, label="path relevance", shrink=0.6)
    if trace and trace.ranked_leaves:
        best = trace.ranked_leaves[:top]
        ax.scatter([pos[v][0] for v in best], [pos[v][1] - 0.25 for v in best], marker="*", s=120, color="#ff7f0e", zorder=3, label=f"top {len(best)}")
        ax.legend(loc="lower right")
    labels = {v: "\n".join(textwrap.wrap(tree.text(v)[:label_chars], 12)) for v in graph if not tree.is_leaf(v)}
    nx.draw_networkx_labels(graph, pos, labels=labels, ax=ax, font_size=6, verticalalignment="bottom")
    calls = f", {trace.llm_calls} LLM calls" if trace else ""
    ax.set_title(f"LATTICE tree: {len(tree.leaves())} leaves, depth {tree.depth}{calls}")
    ax.set_axis_off()
    return ax.figure
