"""Core types, the stage protocol and model loading."""

from ragpress.core.stage import Stage
from ragpress.core.types import Answer, Chunk, Context, Document, check_provenance

__all__ = ["Answer", "Chunk", "Context", "Document", "Stage", "check_provenance"]
