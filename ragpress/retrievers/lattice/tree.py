"""LATTICE's offline stage: organise chunks into a semantic tree with LLM-written summaries.

Gupta et al., "LLM-guided Hierarchical Retrieval" (2025), offline corpus organisation: leaves are
the documents (here chunks), internal nodes are clusters described by an LLM summary of their
children, so higher nodes carry more abstract, multi-level summaries. Two strategies, as in the paper:

* ``bottom_up`` (agglomerative): cluster the current level's embeddings, summarise each cluster,
  embed the summaries and repeat on the new level until at most ``branching`` nodes remain.
  Clusters are the maximal subtrees of a Ward dendrogram with at most ``branching`` members.
* ``top_down`` (divisive): split the corpus into ``branching`` spherical k-means clusters and
  recurse until a cluster fits under one node; summaries are then written bottom-up, level by level.

Deviations: the paper's top-down variant clusters LLM-written multi-level summaries of each
document; we cluster the chunk embeddings directly (one LLM call per internal node instead of one
per document) and let the node summaries carry the levels. :meth:`SemanticTree.extend` (adding
documents without a rebuild) is ours: the paper leaves dynamic corpora to future work.

The tree is a :class:`networkx.DiGraph` (edges parent -> child, in order); node ``i`` has row ``i``
of ``embeddings``. It saves as JSON plus a safetensors array, never pickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
from safetensors.numpy import load_file, save_file

from ragpress.core.settings import read_json
from ragpress.core.types import Chunk
from ragpress.retrievers.llm_scoring import ChatLLM, safe_passage

Embed = Callable[[list[str]], np.ndarray]
Summarize = Callable[[list[list[str]]], list[str]]
_FORMAT = 1


@dataclass
class SemanticTree:
    graph: nx.DiGraph
    embeddings: np.ndarray  # [nodes, dim], unit rows
    chunks: list[Chunk]
    root: int

    def children(self, node: int) -> list[int]:
        return list(self.graph.successors(node))

    def parent(self, node: int) -> int | None:
        return next(iter(self.graph.predecessors(node)), None)

    def is_leaf(self, node: int) -> bool:
        return "chunk" in self.graph.nodes[node]

    def text(self, node: int) -> str:
        return self.graph.nodes[node]["text"]

    def chunk(self, leaf: int) -> Chunk:
        return self.chunks[self.graph.nodes[leaf]["chunk"]]

    def path(self, node: int) -> list[int]:
        """Node ids from the root down to ``node``."""
        return nx.shortest_path(self.graph, self.root, node)

    def node_depth(self, node: int) -> int:
        return len(self.path(node)) - 1

    @property
    def depth(self) -> int:
        return max(nx.single_source_shortest_path_length(self.graph, self.root).values())

    def leaves(self) -> list[int]:
        return [n for n in self.graph if self.is_leaf(n)]

    def extend(self, chunks: Sequence[Chunk], embeddings: np.ndarray, branching: int, summarize: Summarize, embed: Embed) -> None:
        """Add ``chunks`` as leaves: each descends from the root towards the most similar child and
        joins the node where that child is a leaf; a node left with more than ``branching``
        children is split in two (2-means) below itself; every touched internal node and its
        ancestors get fresh summaries."""
        touched: set[int] = set()
        for chunk, vector in zip(chunks, embeddings):
            node = self.root
            while True:
                kids = self.children(node)
                best = kids[int(np.argmax(self.embeddings[kids] @ vector))] if kids else None
                if best is None or self.is_leaf(best):
                    break
                node = best
            leaf = self._add_node(chunk.text, vector, chunk=len(self.chunks))
            self.chunks.append(chunk)
            self.graph.add_edge(node, leaf)
            touched.add(node)
        work = list(touched)
        while work:
            node = work.pop()
            kids = self.children(node)
            if len(kids) <= branching:
                continue
            for group in _split(self.embeddings[kids], 2, np.random.default_rng(len(kids))):
                child = self._add_node("", self.embeddings[[kids[i] for i in group]].mean(0))
                for i in group:
                    self.graph.remove_edge(node, kids[i])
                    self.graph.add_edge(child, kids[i])
                self.graph.add_edge(node, child)
                touched.add(child)
                work.append(child)
        stale = {a for n in touched for a in self.path(n)} - {self.root}
        self._summarize(sorted(stale), summarize, embed)

    def _add_node(self, text: str, vector: np.ndarray, **attrs) -> int:
        node = self.graph.number_of_nodes()
        self.graph.add_node(node, text=text, **attrs)
        self.embeddings = np.vstack([self.embeddings, vector[None].astype(np.float32)])
        return node

    def _summarize(self, nodes: list[int], summarize: Summarize, embed: Embed) -> None:
        """Write summaries deepest first, so a parent reads its children's new summaries."""
        heights = {n: _height(self, n) for n in nodes}
        for height in sorted(set(heights.values())):
            level = [n for n in nodes if heights[n] == height]
            texts = summarize([[self.text(c) for c in self.children(n)] for n in level])
            for node, text in zip(level, texts):
                self.graph.nodes[node]["text"] = text
            self.embeddings[level] = embed(texts)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        nodes = [{"id": n, **self.graph.nodes[n]} for n in sorted(self.graph)]
        chunks = [_chunk_dict(c) for c in self.chunks]
        tree = {"format": _FORMAT, "root": self.root, "nodes": nodes, "children": {n: self.children(n) for n in self.graph}, "chunks": chunks}
        (path / "lattice_tree.json").write_text(json.dumps(tree))
        save_file({"embeddings": np.ascontiguousarray(self.embeddings, dtype=np.float32)}, str(path / "lattice_embeddings.safetensors"))

    @classmethod
    def load(cls, path: str | Path) -> SemanticTree:
        path = Path(path)
        if not (path / "lattice_tree.json").exists():
            raise FileNotFoundError(f"No LATTICE index in {path}: expected lattice_tree.json written by SemanticTree.save.")
        data = read_json(path / "lattice_tree.json")
        if data.get("format") != _FORMAT:
            raise ValueError(f"{path} holds LATTICE index format {data.get('format')!r}; this version reads {_FORMAT}.")
        graph = nx.DiGraph()
        for node in data["nodes"]:
            graph.add_node(node.pop("id"), **node)
        for parent, kids in data["children"].items():
            graph.add_edges_from((int(parent), k) for k in kids)
        chunks = [Chunk(**{**c, "metadata": c.get("metadata", {})}) for c in data["chunks"]]
        embeddings = load_file(str(path / "lattice_embeddings.safetensors"))["embeddings"]
        return cls(graph, embeddings, chunks, data["root"])


def build_tree(
    chunks: list[Chunk], embeddings: np.ndarray, strategy: str, branching: int, summarize: Summarize, embed: Embed, seed: int = 0
) -> SemanticTree:
    """A semantic tree over ``chunks`` (leaf ``i`` is chunk ``i``) with LLM summaries on internal nodes."""
    graph = nx.DiGraph()
    for i, chunk in enumerate(chunks):
        graph.add_node(i, text=chunk.text, chunk=i)
    tree = SemanticTree(graph, np.asarray(embeddings, dtype=np.float32), list(chunks), root=-1)
    rng = np.random.default_rng(seed)
    if strategy == "top_down":
        tree.root = _divide(tree, list(range(len(chunks))), branching, rng)
        tree._summarize([n for n in tree.graph if not tree.is_leaf(n) and n != tree.root], summarize, embed)
    elif strategy == "bottom_up":
        level = list(range(len(chunks)))
        while len(level) > branching:
            groups = _agglomerate(tree.embeddings[level], branching)
            merged = [tree._add_node("", tree.embeddings[[level[i] for i in g]].mean(0)) for g in groups if len(g) > 1]
            for node, group in zip(merged, [g for g in groups if len(g) > 1]):
                tree.graph.add_edges_from((node, level[i]) for i in group)
            tree._summarize(merged, summarize, embed)
            level = [level[g[0]] for g in groups if len(g) == 1] + merged
        tree.root = level[0] if len(level) == 1 and not tree.is_leaf(level[0]) else _join(tree, level)
    else:
        raise ValueError(f"Unknown tree strategy {strategy!r}: use 'bottom_up' (agglomerative) or 'top_down' (divisive).")
    tree.graph.nodes[tree.root]["text"] = "(root)"
    return tree


def _join(tree: SemanticTree, members: list[int]) -> int:
    node = tree._add_node("", tree.embeddings[members].mean(0))
    tree.graph.add_edges_from((node, m) for m in members)
    return node


def _divide(tree: SemanticTree, members: list[int], branching: int, rng: np.random.Generator) -> int:
    if len(members) <= branching:
        return _join(tree, members)
    groups = _split(tree.embeddings[members], branching, rng)
    return _join(tree, [m[0] if len(m) == 1 else _divide(tree, m, branching, rng) for m in ([members[i] for i in g] for g in groups)])


def _split(vectors: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 25) -> list[list[int]]:
    """Spherical k-means (k-means++ start) into at most ``k`` non-empty groups; falls back to
    equal slices when the vectors do not separate (e.g. identical texts), so recursion always ends."""
    n = len(vectors)
    centres = [vectors[rng.integers(n)]]
    for _ in range(1, k):
        gap = np.clip(1 - np.max(vectors @ np.array(centres).T, axis=1), 0, None)
        if gap.sum() <= 1e-9:
            break
        centres.append(vectors[rng.choice(n, p=gap / gap.sum())])
    centres = np.array(centres)
    for _ in range(iterations):
        assign = np.argmax(vectors @ centres.T, axis=1)
        for c in range(len(centres)):
            if np.any(assign == c):
                mean = vectors[assign == c].mean(0)
                centres[c] = mean / (np.linalg.norm(mean) or 1.0)
    groups = [list(np.flatnonzero(assign == c)) for c in range(len(centres)) if np.any(assign == c)]
    if len(groups) < 2:
        return [list(part) for part in np.array_split(np.arange(n), min(k, n))]
    return groups


def _agglomerate(vectors: np.ndarray, branching: int) -> list[list[int]]:
    """Maximal subtrees of the Ward dendrogram with at most ``branching`` members."""
    from scipy.cluster.hierarchy import linkage, to_tree

    stack, groups = [to_tree(linkage(vectors, method="ward"))], []
    while stack:
        node = stack.pop()
        if node.count <= branching:
            groups.append(sorted(node.pre_order()))
        else:
            stack.extend([node.right, node.left])
    return groups


def _height(tree: SemanticTree, node: int) -> int:
    kids = tree.children(node)
    return 0 if not kids else 1 + max(_height(tree, c) for c in kids)


def _chunk_dict(chunk: Chunk) -> dict:
    fields = {"doc_id": chunk.doc_id, "start": chunk.start, "end": chunk.end, "text": chunk.text, "token_count": chunk.token_count}
    metadata = dict(chunk.metadata)
    try:
        json.dumps(metadata)
    except TypeError as error:
        raise TypeError(f"Chunk metadata must be JSON-serialisable to save a LATTICE index ({error}); drop or convert that field.") from error
    return {**fields, "metadata": metadata}


def llm_summarizer(llm: ChatLLM, words: int, child_chars: int, max_new_tokens: int) -> Summarize:
    """Batched LLM summaries of groups of texts (offline stage). An empty reply falls back to the
    children's opening words, so no node is left without a description."""

    def summarize(groups: list[list[str]]) -> list[str]:
        prompts = []
        for texts in groups:
            listing = "\n".join(f"({i + 1}) {safe_passage(t, child_chars)}" for i, t in enumerate(texts))
            prompts.append([
                {"role": "system", "content": "You write short topic descriptions for a search index."},
                {"role": "user", "content": f"Passages:\n{listing}\n\nIn one sentence of at most {words} words, name the topics these "
                 "passages share and what they cover. Reply with the sentence only."},
            ])
        replies = llm.complete(prompts, max_new_tokens, desc="LATTICE summaries")
        return [" ".join(r.split()) or "; ".join(safe_passage(t, 60) for t in texts) for r, texts in zip(replies, groups)]

    return summarize
