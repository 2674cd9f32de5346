"""Pictures of an EDU tree (:mod:`ragpress.chunkers.edu`): a networkx graph and a matplotlib plot."""

from __future__ import annotations

from ragpress.core.extras import require

require("matplotlib", what="EDU tree pictures")

from ragpress.chunkers.edu import LEVELS, EDUTree, check_level


def to_networkx(tree: EDUTree):
    """A ``networkx.DiGraph``: nodes keyed by path with level/start/end/text, parent -> child edges."""
    import networkx as nx

    graph = nx.DiGraph()
    for node in tree.walk():
        path = node.metadata["path"]
        graph.add_node(path, level=node.metadata["level"], start=node.start, end=node.end, text=node.text)
        if path:
            graph.add_edge(path[:-1], path)
    return graph


def plot_tree(tree: EDUTree, depth: str = "sentence", ax=None):
    """Plot the tree down to ``depth`` (leaves spread left to right, levels top to bottom);
    returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    import networkx as nx

    rank = LEVELS.index(check_level(depth))
    graph = to_networkx(tree)
    graph.remove_nodes_from([p for p, d in list(graph.nodes(data=True)) if LEVELS.index(d["level"]) > rank])
    leaves = [p for p in sorted(graph) if graph.out_degree(p) == 0]
    x = {p: float(i) for i, p in enumerate(leaves)}
    for p in sorted(graph, key=len, reverse=True):  # parents centred over their children
        if p not in x:
            kids = list(graph.successors(p))
            x[p] = sum(x[k] for k in kids) / len(kids)
    pos = {p: (x[p], -LEVELS.index(graph.nodes[p]["level"])) for p in graph}
    colors = [LEVELS.index(graph.nodes[p]["level"]) for p in graph]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, len(leaves) * 0.25), 4))
    nx.draw_networkx(graph, pos, ax=ax, node_color=colors, cmap="viridis", with_labels=False, node_size=40, arrows=False)
    ax.set_yticks([-i for i in range(rank + 1)], LEVELS[: rank + 1])
    ax.tick_params(left=True, labelleft=True)
    ax.set_title(f"EDU tree ({len(leaves)} {depth} leaves)")
    return ax.figure
