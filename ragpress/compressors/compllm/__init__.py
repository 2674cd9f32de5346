"""CompLLM (Berton et al., "CompLLM: Compression for Long Context Q&A", 2025, arXiv:2509.19228):
segments compressed independently into concept embeddings, cached by content; ships adapters we
trained for ``smollm2-135m``."""

from ragpress.core.extras import require

require("torch", "peft", what="CompLLM")

from ragpress.compressors.compllm.model import (
    PAPER_RATIO,
    PAPER_SEGMENT_TOKENS,
    AdapterConfig,
    CompLLMEncoder,
    concept_count,
    concept_embeddings,
    load_checkpoint,
    save_checkpoint,
    split_segments,
)
from ragpress.compressors.compllm.stage import CompLLM

__all__ = [
    "PAPER_RATIO", "PAPER_SEGMENT_TOKENS", "AdapterConfig", "CompLLM", "CompLLMEncoder", "concept_count",
    "concept_embeddings", "load_checkpoint", "save_checkpoint", "split_segments",
]
