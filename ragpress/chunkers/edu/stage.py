"""The EDU stage: a document as chunks at one level of its EDU tree (Zhou et al., "From Context to
EDUs", arXiv 2512.14244, Sec. 3.1); the tree and its deviations are in :mod:`ragpress.chunkers.edu.tree`."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ragpress.chunkers.base import Chunker
from ragpress.chunkers.edu.tree import EDUTree, build_edu_tree, build_edu_trees, check_level
from ragpress.core.types import Chunk, Document


@dataclasses.dataclass
class EDUTreeSettings:
    """How EDU trees are built (see :func:`build_edu_tree`); shared by the EDU chunker and the EDU
    selection compressor."""

    segmenter: str = "parse"
    segmenter_model: str = "smollm2-135m"  # the LLM that segments when segmenter="llm"
    min_words: int = 3
    plain_headings: bool = True

    def __post_init__(self):
        if self.segmenter not in ("parse", "llm"):
            raise ValueError(f"segmenter must be 'parse' or 'llm', got {self.segmenter!r}.")
        if not isinstance(self.min_words, int) or self.min_words < 1:
            raise ValueError(f"min_words must be an int of at least 1, got {self.min_words!r}.")

    def tree(self, source: Document | Chunk) -> EDUTree:
        return build_edu_tree(source, self.segmenter, self.segmenter_model, self.min_words, self.plain_headings)


@dataclasses.dataclass
class EDUChunker(EDUTreeSettings, Chunker):
    """Chunks at one level of the EDU tree (``level`` in document/section/paragraph/sentence/edu);
    each chunk keeps its sub-tree in ``children``."""

    method: ClassVar[str] = "edu"
    level: str = "edu"

    def __post_init__(self):
        super().__post_init__()
        check_level(self.level)

    def chunk(self, document: Document) -> list[Chunk]:
        return self.chunk_batch([document])[0]

    def chunk_batch(self, documents: list[Document]) -> list[list[Chunk]]:
        """Every document's tree, the LLM segmenter's prompts of all of them in shared batches."""
        trees = build_edu_trees(documents, self.segmenter, self.segmenter_model, self.min_words, self.plain_headings)
        return [tree.cut(self.level) for tree in trees]
