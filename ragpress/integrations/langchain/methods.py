"""One document compressor per ragpress method, built from the method's own settings as keyword
arguments, as LangChain users know from ``CohereRerank(top_n=...)``: ``ProvenceCompressor(threshold=0.1,
top_k=3)``, ``BudgetPackerCompressor(budget=384)``. The stage is imported on first construction, so
importing the adapter does not load torch."""

from __future__ import annotations

from typing import Any, ClassVar

from ragpress.core.stage import Stage
from ragpress.integrations.langchain.compressor import RagpressDocumentCompressor


class MethodCompressor(RagpressDocumentCompressor):
    """A :class:`RagpressDocumentCompressor` whose stage, named by :attr:`stage_path`, it builds
    from keyword settings: the stage's own field names, checked by name and type as a pipeline
    file's are (:meth:`Stage.from_dict`; an unknown name raises
    :class:`~ragpress.core.errors.UnknownSettingError`, a ``TypeError``, with LangChain's spellings
    such as ``top_n`` pointed to ragpress's)."""

    stage_path: ClassVar[str]

    def __init__(self, **settings: Any):
        super().__init__(Stage.from_dict({"type": self.stage_path, "settings": settings}, allow=settings))


class ProvenceCompressor(MethodCompressor):
    """Provence sentence pruning (``threshold``, ``top_k``, ``model``, ...): :class:`~ragpress.compressors.provence.Provence`."""

    stage_path: ClassVar[str] = "ragpress.compressors.provence.Provence"


class LongCodeZipCompressor(MethodCompressor):
    """LongCodeZip code compression (``budget`` or ``ratio``, ``model``, ...): :class:`~ragpress.compressors.longcodezip.LongCodeZip`."""

    stage_path: ClassVar[str] = "ragpress.compressors.longcodezip.LongCodeZip"


class EDUSelectCompressor(MethodCompressor):
    """EDU selection under a token ``budget``: :class:`~ragpress.compressors.edu_select.EDUSelectCompressor`."""

    stage_path: ClassVar[str] = "ragpress.compressors.edu_select.EDUSelectCompressor"


class BudgetPackerCompressor(MethodCompressor):
    """Whole chunks, best first, within a token ``budget``: :class:`~ragpress.compressors.budget_packer.BudgetPacker`."""

    stage_path: ClassVar[str] = "ragpress.compressors.budget_packer.BudgetPacker"


class RebelCompressor(MethodCompressor):
    """REBEL reranking by LLM-judged criteria, keeping the ``top_k`` best: :class:`~ragpress.retrievers.rebel.RebelReranker`."""

    stage_path: ClassVar[str] = "ragpress.retrievers.rebel.RebelReranker"
