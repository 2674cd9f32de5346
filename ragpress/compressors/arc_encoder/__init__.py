"""ARC-Encoder (Pilchen, Grave & Pérez, "ARC-Encoder: learning compressed text representations for
large language models", 2025, arXiv 2510.20535): a pooled-query encoder with one projector per
decoder, at pooling ratio 4 or 8; ships a checkpoint we trained for ``smollm2-135m``."""

from ragpress.core.extras import require

require("torch", "peft", what="ARC-Encoder")

from ragpress.compressors.arc_encoder.model import ArcModel, group_sizes, pooling_matrix
from ragpress.compressors.arc_encoder.stage import ArcEncoder

__all__ = ["ArcEncoder", "ArcModel", "group_sizes", "pooling_matrix"]
