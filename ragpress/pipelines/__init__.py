"""The pipeline graph."""

from ragpress.pipelines.graph import Pipeline
from ragpress.pipelines.trace import Result, StageTrace

__all__ = ["Pipeline", "Result", "StageTrace"]
