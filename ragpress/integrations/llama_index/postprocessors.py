"""Any ragpress compressor or reranker as a LlamaIndex node postprocessor, and one postprocessor
per method that takes the method's settings as keyword arguments, as LlamaIndex users know from
``CohereRerank(top_n=...)``: ``ProvencePostprocessor(threshold=0.1)``, ``BudgetPackerPostprocessor(budget=384)``."""

from __future__ import annotations

import asyncio
import warnings
from typing import Annotated, Any, ClassVar

from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle
from pydantic import Field, InstanceOf

from ragpress.core.errors import BudgetTooSmallError
from ragpress.core.stage import Stage
from ragpress.integrations._common import check_chunk_stage, postprocess
from ragpress.integrations.llama_index.nodes import node_to_chunk, scored_nodes
from ragpress.integrations.llama_index.serialize import AsDict

__all__ = [
    "BudgetPackerPostprocessor",
    "EDUSelectPostprocessor",
    "LongCodeZipPostprocessor",
    "ProvencePostprocessor",
    "RagpressNodePostprocessor",
    "RebelPostprocessor",
]


class RagpressNodePostprocessor(BaseNodePostprocessor):
    """Any ragpress compressor or reranker as a LlamaIndex node postprocessor, so a
    ``RetrieverQueryEngine`` can use it unchanged. Unchanged spans come back as the original
    nodes; pieces a compressor cut from a node come back as new nodes with that node's metadata
    and source document, and offsets into it; the stage's bookkeeping (``chunk_index``,
    ``rerank_score``...) travels under ``ragpress_`` keys hidden from embedders and the LLM.

    A budgeted compressor that can keep nothing (:class:`~ragpress.core.errors.BudgetTooSmallError`) gives
    no nodes and a warning naming the budget and the fix, rather than aborting the query. Soft
    (embedding) compressors cannot hand back text and are refused when run. The async form runs the
    stage in a worker thread, so concurrent queries overlap."""

    stage: Annotated[InstanceOf[Stage], AsDict] = Field(description="The ragpress Compressor or Reranker.")

    def __init__(self, stage: Stage, **kwargs: Any):
        check_chunk_stage(stage)
        super().__init__(stage=stage, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "RagpressNodePostprocessor"

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError(f"{type(self.stage).__name__} needs the query: call postprocess_nodes(nodes, query_str=...).")
        if not nodes:
            return []
        chunks = [node_to_chunk(n) for n in nodes]
        try:
            pieces = postprocess(self.stage, query_bundle.query_str, chunks)
        except BudgetTooSmallError as error:
            warnings.warn(f"{type(self.stage).__name__} kept no nodes, so the query goes on without context: {error}", stacklevel=2)
            return []
        return scored_nodes(pieces, nodes, chunks)

    async def _apostprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._postprocess_nodes, nodes, query_bundle)


class MethodPostprocessor(RagpressNodePostprocessor):
    """A postprocessor for one ragpress method, built from that method's settings: keyword
    arguments that are not the postprocessor's own fields (such as ``callback_manager``) go to
    the stage, checked by name and type. The stage's module is imported only when one is built."""

    stage_type: ClassVar[str]  # the public path of the stage class

    def __init__(self, **settings: Any):
        own = {name: settings.pop(name) for name in list(settings) if name in type(self).model_fields and name != "stage"}
        stage = Stage.from_dict({"type": self.stage_type, "settings": settings}, allow=settings)
        super().__init__(stage, **own)

    @classmethod
    def class_name(cls) -> str:
        return cls.__name__


class ProvencePostprocessor(MethodPostprocessor):
    """Provence (Chirkova et al., 2025): prunes each node to the sentences relevant to the query.
    Settings: :class:`~ragpress.compressors.provence.Provence`'s (``threshold``, ``top_k``, ``rerank``, ``model``...)."""

    stage_type: ClassVar[str] = "ragpress.compressors.provence.Provence"


class LongCodeZipPostprocessor(MethodPostprocessor):
    """LongCodeZip: keeps the functions and blocks of code nodes most informative for the query.
    Settings: :class:`~ragpress.compressors.longcodezip.LongCodeZip`'s (``budget`` or ``ratio``, ``model``...)."""

    stage_type: ClassVar[str] = "ragpress.compressors.longcodezip.LongCodeZip"


class EDUSelectPostprocessor(MethodPostprocessor):
    """EDU sub-tree selection: keeps the query-relevant parts of each node's discourse tree within
    ``budget`` tokens. Settings: :class:`~ragpress.compressors.edu_select.EDUSelectCompressor`'s."""

    stage_type: ClassVar[str] = "ragpress.compressors.edu_select.EDUSelectCompressor"


class BudgetPackerPostprocessor(MethodPostprocessor):
    """Keeps whole nodes, best first, while they fit ``budget`` tokens.
    Settings: :class:`~ragpress.compressors.budget_packer.BudgetPacker`'s (``budget``, ``order``, ``tokenizer``)."""

    stage_type: ClassVar[str] = "ragpress.compressors.budget_packer.BudgetPacker"


class RebelPostprocessor(MethodPostprocessor):
    """REBEL: reranks nodes by an LLM's ratings against query-specific criteria, keeping ``top_k``.
    Settings: :class:`~ragpress.retrievers.rebel.RebelReranker`'s (``top_k``, ``mode``, ``model``...)."""

    stage_type: ClassVar[str] = "ragpress.retrievers.rebel.RebelReranker"
