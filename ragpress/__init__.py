"""ragpress: faithful, fast implementations of recent context-compression and RAG methods behind
one small interface. Data flows one way: ``Document -> Chunk -> Context -> Answer``."""

from ragpress.core.stage import Stage
from ragpress.core.types import Answer, Chunk, Context, Document, check_provenance
from ragpress.pipelines.graph import Pipeline
from ragpress.pipelines.trace import Result

__all__ = ["Answer", "Chunk", "Context", "Document", "Pipeline", "Result", "Stage", "check_provenance"]
__version__ = "0.1.0"
