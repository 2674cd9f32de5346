"""Meta-Chunking (Zhao et al., "Meta-Chunking: Learning Efficient Text Segmentation via Logical
Perception", arXiv:2410.12788): perplexity chunking, margin-sampling chunking and dynamic merging."""

from ragpress.core.extras import require

require("torch", what="Meta-Chunking")

from ragpress.chunkers.meta_chunking.margin import keep_margins
from ragpress.chunkers.meta_chunking.perplexity import sentence_nll, token_nll
from ragpress.chunkers.meta_chunking.stage import (
    MarginSamplingChunker,
    MetaChunker,
    PerplexityChunker,
    find_minima,
    merge_ends,
)

__all__ = [
    "MarginSamplingChunker", "MetaChunker", "PerplexityChunker", "find_minima", "keep_margins", "merge_ends",
    "sentence_nll", "token_nll",
]
