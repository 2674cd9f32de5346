"""Stages saved by ragpress before the layout of 2026-11-30 (pipeline files without ``version``, and
retriever folders' ``stage.json``): the type paths and setting names they used, mapped to today's.

Only saved files are translated, at the file boundary; the Python API has no aliases. Every rule is
idempotent, so a current file passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MOVED = {
    "ragpress.chunkers.margin_sampling.MarginSamplingChunker": "ragpress.chunkers.meta_chunking.MarginSamplingChunker",
    "ragpress.retrievers.retrolm.RetroLM": "ragpress.generators.retrolm.RetroLM",
}
_TOP_K = {"k": "top_k"}
RENAMED: dict[str, dict[str, str]] = {
    "ragpress.retrievers.dense.DenseRetriever": _TOP_K,
    "ragpress.retrievers.bm25.BM25Retriever": _TOP_K,
    "ragpress.retrievers.lattice.LatticeRetriever": {**_TOP_K, "llm": "model", "embedder": "embedding_model"},
    "ragpress.retrievers.rebel.RebelReranker": {"llm": "model"},
    "ragpress.chunkers.code.CodeChunker": {"llm": "model"},
    "ragpress.chunkers.edu.EDUChunker": {"llm": "segmenter_model"},
    "ragpress.compressors.edu_select.EDUSelectCompressor": {"llm": "segmenter_model", "embedder": "model"},
    "ragpress.compressors.gemfilter.GemFilter": {"k": "budget"},
    "ragpress.generators.gemfilter.GemFilterGenerator": {"k": "budget"},
    "ragpress.compressors.longcodezip.LongCodeZip": {"target_tokens": "budget", "rate": "ratio"},
    "ragpress.compressors.compllm.CompLLM": {"rate": "ratio", "batch_segments": "batch_size"},
    "ragpress.compressors.arc_encoder.ArcEncoder": {"factor": "ratio"},
}
# Settings that no longer exist: the tokenizer of compressors that count with their own model, and
# ARC-Encoder's restatement of the encoder its checkpoint already names.
DROPPED = {
    "ragpress.compressors.longcodezip.LongCodeZip": {"tokenizer"},
    "ragpress.compressors.compllm.CompLLM": {"tokenizer"},
    "ragpress.compressors.arc_encoder.ArcEncoder": {"tokenizer", "encoder"},
}


def _reciprocal(value: Any) -> Any:
    """A kept fraction (< 1, the old ``rate``/``fine_ratio``) as tokens in per token out."""
    return 1 / value if isinstance(value, (int, float)) and 0 < value < 1 else value


CONVERTED: dict[str, dict[str, Callable[[Any], Any]]] = {
    "ragpress.compressors.longcodezip.LongCodeZip": {"ratio": _reciprocal, "fine_ratio": _reciprocal},
}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A stage's ``{"type", "settings"}`` in today's names (a copy; ``data`` is left as it is)."""
    kind = MOVED.get(data.get("type", ""), data.get("type", ""))
    settings = dict(data.get("settings") or {})
    renames = RENAMED.get(kind, {})
    settings = {renames.get(k, k) if renames.get(k, k) not in settings else k: v for k, v in settings.items()}
    settings = {k: v for k, v in settings.items() if k not in DROPPED.get(kind, ())}
    for name, convert in CONVERTED.get(kind, {}).items():
        if name in settings:
            settings[name] = convert(settings[name])
    return {**data, "type": kind, "settings": settings}
