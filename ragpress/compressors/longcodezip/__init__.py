"""LongCodeZip (Shi et al., "LongCodeZip: Compress Long Context for Code Language Models", ASE 2025,
arXiv:2510.00446): coarse function ranking by conditional perplexity, then fine block selection under
a token budget."""

from ragpress.core.extras import require

require("torch", "tree_sitter", what="LongCodeZip")

from ragpress.compressors.longcodezip.stage import LongCodeZip

__all__ = ["LongCodeZip"]
