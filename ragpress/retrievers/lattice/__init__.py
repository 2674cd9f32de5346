"""LATTICE (Gupta et al., "LLM-guided Hierarchical Retrieval", 2025, arXiv:2510.13217): a semantic
tree with LLM summaries, searched best first on calibrated path relevance."""

from ragpress.core.extras import require

require("torch", what="LATTICE")

from ragpress.retrievers.lattice.stage import LatticeRetriever, LatticeStep, LatticeTrace, calibrate, slate_prompt
from ragpress.retrievers.lattice.tree import SemanticTree, build_tree, llm_summarizer

__all__ = ["LatticeRetriever", "LatticeStep", "LatticeTrace", "SemanticTree", "build_tree", "calibrate", "llm_summarizer", "slate_prompt"]
