"""The pipeline graph."""

from ragpress.pipelines.graph import Pipeline, Result, StageTrace

__all__ = ["Pipeline", "Result", "StageTrace"]
