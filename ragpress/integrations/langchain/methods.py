"""One document compressor per ragpress method, built from the method's own settings as keyword
arguments, as LangChain users know from ``CohereRerank(top_n=...)``: ``ProvenceCompressor(threshold=0.1,
top_k=3)``, ``BudgetPackerCompressor(budget=384)``. The stage is imported on first construction, so
importing the adapter does not load torch."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, ClassVar

from ragpress.integrations.langchain.compressor import RagpressDocumentCompressor

# LangChain's names for settings that ragpress spells otherwise (``top_k`` counts chunks everywhere in ragpress).
_THEIR_NAMES = {"top_n": "top_k", "target_token": "budget", "max_tokens": "budget"}


class MethodCompressor(RagpressDocumentCompressor):
    """A :class:`RagpressDocumentCompressor` whose stage, named by :attr:`stage_path`, it builds
    from keyword settings (the stage's own field names, checked here with a message that lists them)."""

    stage_path: ClassVar[str]

    def __init__(self, **settings: Any):
        module, name = self.stage_path.rsplit(".", 1)
        stage_class = getattr(importlib.import_module(module), name)
        known = [f.name for f in dataclasses.fields(stage_class) if f.init]
        unknown = [key for key in settings if key not in known]
        if unknown:
            hints = "".join(f" (ragpress calls {key!r} {_THEIR_NAMES[key]!r})" for key in unknown if _THEIR_NAMES.get(key) in known)
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(map(repr, unknown))}{hints}; {name}'s settings are: {', '.join(known)}.")
        super().__init__(stage_class(**settings))


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
