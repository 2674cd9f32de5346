"""Provence (Chirkova et al., "Provence: efficient and robust context pruning for retrieval-augmented
generation", ICLR 2025): sentence pruning and reranking from one cross-encoder pass; ships a small
checkpoint we trained (``provence-minilm``) and loads the released one by id."""

from ragpress.core.extras import require

require("torch", what="Provence")

from ragpress.compressors.provence.model import ProvenceModel, load_provence
from ragpress.compressors.provence.stage import Provence, normalize_query, sentence_rounding

__all__ = ["Provence", "ProvenceModel", "load_provence", "normalize_query", "sentence_rounding"]
