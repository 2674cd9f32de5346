"""RetroLM (Luo et al., 2025, "Does RAG Really Perform Bad For Long-Context Processing?",
arXiv:2502.11444): retrieval of KV-cache pages while decoding, training-free path (a Context -> Answer
stage)."""

from ragpress.core.extras import require

require("torch", what="RetroLM")

from ragpress.generators.retrolm.paging import PagedContext, RetroLMSettings, build_paged_context
from ragpress.generators.retrolm.prefill import encode_pages, page_means
from ragpress.generators.retrolm.stage import RetroLM

__all__ = ["PagedContext", "RetroLM", "RetroLMSettings", "build_paged_context", "encode_pages", "page_means"]
