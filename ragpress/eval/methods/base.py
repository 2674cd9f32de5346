"""What every evaluated method is: settings shared by all (:class:`Setup`), a way to prepare one
context once (:meth:`Approach.prepare`) and to answer one question over it (:meth:`Approach.respond`).

The split is the one SCBench draws (Li et al. 2024, "SCBench: A KV Cache-Centric Analysis of
Long-Context Methods"): a query-agnostic method does its work in ``prepare`` (compress, cache, page)
and answers every later question from it; a query-aware one can only index in ``prepare`` and
compresses in ``respond``. A single-question run calls both once, so the two modes share one code path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ragpress.core.types import Chunk, Context, Document

Builder = Callable[["Setup", "float | None"], "Approach"]


@dataclass(frozen=True)
class Setup:
    """Settings every method shares: the causal LM that answers (and that model-based methods run),
    where it runs, how long an answer may be, the seed of the random baselines and the decode path."""

    model: str = "smollm2-135m"
    device: str | None = None
    max_new_tokens: int = 32
    seed: int = 0
    decode: str = "auto"  # the answering generator's decode path (ragpress.core.decode); "eager" skips compiling on CUDA


@dataclass
class Reply:
    """An answer in progress: ``stream`` yields its text; once it is spent, ``context()`` is what the
    model read of the source (its pieces and ``tokens_before``/``tokens_after``)."""

    stream: Iterator[str]
    context: Callable[[], Context]


@dataclass
class Prepared:
    """One context made ready: the whole text as a document and its single chunk, its token count,
    and what the method built from it (an index, compressed embeddings, KV pages)."""

    document: Document
    tokens: int
    state: Any = None

    @property
    def whole(self) -> Chunk:
        return Chunk.of(self.document, 0, len(self.document.text))


class Approach:
    """A method at one ratio. ``query_aware`` methods compress per question; ``reads_per_question``
    says whether a model reads the whole context again for each question (GemFilter's filter pass,
    Provence's encoder), which is what makes them cost more when many questions share a context;
    ``reads_in_prepare`` whether one reads it once, up front."""

    query_aware: bool = True
    reads_per_question: bool = False
    reads_in_prepare: bool = False  # a model reads the whole context once in prepare (an embedder, a prefill, an encoder)

    def __init__(self, setup: Setup, ratio: float | None):
        self.setup, self.ratio = setup, ratio

    def budget(self, tokens: int) -> int:
        """Tokens of context to keep: ``tokens / ratio``, at least one."""
        if self.ratio is None:
            raise ValueError(f"{type(self).__name__} needs a ratio to set its budget; pass ratios such as 2 4 8.")
        return max(1, round(tokens / self.ratio))

    def prepare(self, prepared: Prepared) -> Prepared:
        """Do the query-independent work; the default does none."""
        return prepared

    def respond(self, prepared: Prepared, question: str) -> Reply:
        raise NotImplementedError


@dataclass(frozen=True)
class Method:
    """A registered method: ``build(setup, ratio)`` makes its :class:`Approach`. ``ratios`` lists
    the ratios it can run at (``None``: any; ``()``: none, it sets its own); ``tasks`` the task
    families it applies to (``None``: all); ``family`` groups rows in tables."""

    name: str
    build: Builder
    family: str
    ratios: tuple[float, ...] | None = None
    tasks: tuple[str, ...] | None = None
    note: str = ""

    def runs_at(self, ratios: list[float]) -> list[float | None]:
        """The ratios of ``ratios`` this method runs at; ``[None]`` for a method without one."""
        if self.ratios == ():
            return [None]
        return [r for r in ratios if self.ratios is None or r in self.ratios]


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"A method named {method.name!r} is already registered; pick another name")
    METHODS[method.name] = method
    return method


def with_query(context: Context, question: str) -> Context:
    """``context`` asked ``question`` instead (a query-agnostic compression reused for a new question)."""
    return dataclasses.replace(context, query=question)


def generate(setup: Setup, context: Context) -> Reply:
    """Stream the answer of ``setup.model`` to ``context`` (sources or soft embeddings, then the question)."""
    from ragpress.generators.transformers_lm import TransformersGenerator

    generator = TransformersGenerator(model=setup.model, device=setup.device, max_new_tokens=setup.max_new_tokens, decode=setup.decode)
    return Reply(generator.stream(context), lambda: context)


def windows(prepared: Prepared, setup: Setup, size: int) -> list[Chunk]:
    """The context cut into non-overlapping windows of ``size`` tokens of the answering model."""
    from ragpress.chunkers.token_window import TokenWindowChunker

    return TokenWindowChunker(size=max(1, size), overlap=0, tokenizer=setup.model).chunk(prepared.document)
