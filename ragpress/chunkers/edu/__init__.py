"""EDU trees (Zhou et al., "From Context to EDUs: Faithful and Structured Context Compression via EDU
Decomposition", arXiv 2512.14244, 2025): text -> tree of elementary discourse units, every node an
exact source span (spaCy-parse segmenter, or an LLM's; see the tree module's docstring)."""

from ragpress.chunkers.edu.stage import EDUChunker, EDUTreeSettings
from ragpress.chunkers.edu.tree import LEVELS, EDUTree, build_edu_tree, check_level, llm_boundaries, parse_boundaries

__all__ = ["EDUChunker", "EDUTree", "EDUTreeSettings", "LEVELS", "build_edu_tree", "check_level", "llm_boundaries", "parse_boundaries"]
