"""EDU sub-tree selection: query + token budget -> the most relevant sub-trees of the EDU trees of
the chunks, kept as exact source spans and linearised in source order with their structure.

Zhou et al., "From Context to EDUs" (arXiv 2512.14244, 2025), Sec. 3.2: after LingoEDU has turned the
context into a structural relation tree (:mod:`ragpress.chunkers.edu`), "a lightweight ranking module
selects query-relevant sub-trees for linearization" under a hard token budget. Steps:

1. Build (or reuse, for chunks from :class:`~ragpress.chunkers.edu.EDUChunker`) the tree of each chunk.
2. Score every node (section, paragraph, sentence, EDU) by cosine similarity between its text and
   the query with a sentence embedder (paper: a reranker such as Qwen3-Reranker; we default to the
   bundled MiniLM, a deviation for offline CPU use; it reads the first 256 word pieces of a node).
3. Greedy selection, best score first: a node is taken when its tokens, plus the heading lines of
   its enclosing sections not yet kept (``keep_headings``: the structure the paper linearises), less
   the tokens of already-kept descendants it subsumes, still fit the budget. The sum of the token
   counts of the kept pieces never exceeds ``budget``.
4. Linearise: kept nodes in source order; ``Context.metadata["linearized"]`` joins pieces of one
   paragraph with " … " where text was cut and separates paragraphs by blank lines.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from tqdm.auto import tqdm

from ragpress.chunkers.edu import LEVELS, EDUTree, EDUTreeSettings
from ragpress.compressors.base import Compressor
from ragpress.core.errors import BudgetError
from ragpress.core.loaders import load_embedder, load_tokenizer
from ragpress.core.types import Chunk, Context, Document

Key = tuple[int, tuple[int, ...]]  # (input chunk index, node path)


@dataclasses.dataclass
class EDUSelectCompressor(EDUTreeSettings, Compressor):
    """Settings: ``budget`` (tokens of kept context, counted with ``tokenizer``), ``model`` (the
    ranker), ``keep_headings``, and the tree settings of :class:`~ragpress.chunkers.edu.EDUTreeSettings`."""

    method: ClassVar[str] = "edu_select"
    budget: int = 512
    model: str = "minilm-l6"
    tokenizer: str = "smollm2-135m"
    keep_headings: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.budget, int) or self.budget < 1:
            raise ValueError(f"budget must be a positive number of tokens, got {self.budget!r}.")

    def trees(self, chunks: list[Chunk]) -> list[EDUTree]:
        """The EDU tree of each chunk (chunks from EDUChunker already carry theirs)."""
        return [
            EDUTree(c) if "path" in c.metadata and "level" in c.metadata else self.tree(c)
            for c in tqdm(chunks, desc="EDU trees", disable=len(chunks) < 20, leave=False)
        ]

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        tokenizer = load_tokenizer(self.tokenizer)
        count = lambda texts: [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
        chunks = [c for c in chunks if c.text.strip()]
        if not chunks:
            return Context(query=query, metadata={"budget": self.budget})
        nodes: dict[Key, Chunk] = {}
        for i, tree in enumerate(self.trees(chunks)):
            nodes.update(((i, n.metadata["path"]), n) for n in tree.walk() if n.metadata["level"] != "document")
        keys = list(nodes)
        tokens = dict(zip(keys, count(nodes[k].text for k in keys)))
        scores = dict(zip(keys, self.score(query, [nodes[k].text for k in keys])))
        kept = self.select(keys, nodes, tokens, scores)
        if not kept:
            smallest = min(tokens[k] + self._heading_cost(k, nodes, tokens, set()) for k in keys)
            raise BudgetError(
                f"A budget of {self.budget} tokens is smaller than every unit of the context (the smallest "
                f"needs {smallest} tokens{' with its section headings' if self.keep_headings else ''}); "
                f"raise budget to at least {smallest}{' or set keep_headings=False' if self.keep_headings else ''}."
            )
        order = sorted(kept, key=lambda k: (k[0], nodes[k].start))
        pieces = tuple(dataclasses.replace(nodes[k], score=scores[k], token_count=tokens[k]) for k in order)
        return Context(
            query=query,
            pieces=pieces,
            tokens_before=sum(count(c.text for c in chunks)),
            tokens_after=sum(tokens[k] for k in order),
            metadata={"budget": self.budget, "linearized": linearize(pieces, chunks)},
        )

    def score(self, query: str, texts: list[str]) -> list[float]:
        """Cosine similarity of each text to the query."""
        model = load_embedder(self.model)
        vectors = model.encode([query, *texts], batch_size=64, convert_to_tensor=True, normalize_embeddings=True,
                               show_progress_bar=len(texts) > 512)
        return (vectors[1:] @ vectors[0]).float().cpu().tolist()

    def select(self, keys: list[Key], nodes: dict[Key, Chunk], tokens: dict[Key, int], scores: dict[Key, float]) -> set[Key]:
        """Greedy sub-tree selection under the budget (step 3 of the module docstring)."""
        kept: set[Key] = set()
        used = 0
        for key in sorted(keys, key=lambda k: (-scores[k], k)):
            if _covered(key, kept):
                continue
            inside = {k for k in kept if k[0] == key[0] and k[1][: len(key[1])] == key[1]}
            headings = self._headings(key, nodes, kept) if self.keep_headings else set()
            cost = tokens[key] - sum(tokens[k] for k in inside) + sum(tokens[h] for h in headings)
            if used + cost <= self.budget:
                kept = (kept - inside) | {key} | headings
                used += cost
        return kept

    def _headings(self, key: Key, nodes: dict[Key, Chunk], kept: set[Key]) -> set[Key]:
        """Heading-line nodes of the sections enclosing ``key`` that are not yet kept or covered."""
        out = set()
        doc, path = key
        for depth in range(1, len(path)):
            section = (doc, path[:depth])
            if nodes.get(section) is not None and nodes[section].metadata["level"] == "section":
                heading = (doc, (*path[:depth], 0))
                if heading != key and nodes[heading].metadata.get("heading") and not _covered(heading, kept):
                    out.add(heading)
        return out

    def _heading_cost(self, key: Key, nodes: dict[Key, Chunk], tokens: dict[Key, int], kept: set[Key]) -> int:
        return sum(tokens[h] for h in self._headings(key, nodes, kept)) if self.keep_headings else 0


def _covered(key: Key, kept: set[Key]) -> bool:
    return any((key[0], key[1][:d]) in kept for d in range(len(key[1]) + 1))


def linearize(pieces: tuple[Chunk, ...] | list[Chunk], sources: list[Chunk]) -> str:
    """Kept pieces in the given (source) order: pieces of one paragraph joined by a space when only
    whitespace lies between them in ``sources`` (the chunks they came from) and by " … " where text
    was cut; paragraphs separated by a blank line."""
    out: list[str] = []
    previous: Chunk | None = None
    for piece in pieces:
        if previous is not None:
            block = _paragraph(previous)
            same = previous.doc_id == piece.doc_id and block is not None and block == _paragraph(piece)
            out.append((" " if _gap(previous, piece, sources).isspace() else " … ") if same else "\n\n")
        out.append(piece.text)
        previous = piece
    return "".join(out)


def _gap(left: Chunk, right: Chunk, sources: list[Chunk]) -> str:
    for source in sources:
        if source.doc_id == left.doc_id and source.start <= left.end <= right.start <= source.end:
            return source.text[left.end - source.start : right.start - source.start] or " "
    return "…"


def _paragraph(piece: Chunk) -> Any:
    level, path = piece.metadata.get("level"), piece.metadata.get("path")
    if level not in LEVELS or LEVELS.index(level) < LEVELS.index("paragraph"):
        return None
    return path[: len(path) - (LEVELS.index(level) - LEVELS.index("paragraph"))]


def highlight_html(context: Context, document: Document) -> str:
    """HTML of ``document`` with the kept pieces marked and the dropped text greyed out."""
    import html

    out, cursor = [], 0
    for piece in sorted((p for p in context.pieces if p.doc_id == document.id), key=lambda p: p.start):
        out.append(f'<span style="color:#999">{html.escape(document.text[cursor : piece.start])}</span>')
        out.append(f'<mark title="{piece.metadata.get("level")} {piece.score:.3f}">{html.escape(piece.text)}</mark>')
        cursor = piece.end
    out.append(f'<span style="color:#999">{html.escape(document.text[cursor:])}</span>')
    return '<div style="white-space:pre-wrap;font-family:sans-serif">' + "".join(out) + "</div>"
