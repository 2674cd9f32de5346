"""RetroLM as a generator stage (Luo et al., 2025, arXiv:2502.11444): the paged KV cache and page
retrieval live in :mod:`ragpress.generators.retrolm.paging`, whose docstring follows the paper step by
step and states where we deviate."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import ClassVar

from ragpress.core.loaders import load_causal_lm
from ragpress.core.types import Answer, Chunk, Context, Document
from ragpress.generators.base import Generator, check_context
from ragpress.generators.retrolm.paging import PagedContext, RetroLMSettings, build_paged_context


@dataclasses.dataclass
class RetroLM(RetroLMSettings, Generator):
    """RetroLM as a generator stage: ``Context -> Answer``.

    Where it sits in a pipeline: RetroLM *is* the retriever and the generator at once, retrieving KV
    pages rather than text chunks, so it replaces ``retriever -> packer -> generator``: give it a
    Context whose pieces are the whole long document (or a few long sources) and the question. The
    paged KV of the last context it saw is kept, so asking new questions of the same context skips the
    prefill; :meth:`build` gives the reusable :class:`PagedContext` directly.
    """

    method: ClassVar[str] = "retrolm"
    answers_conversations: ClassVar[bool] = False  # its prompt is its paged sources

    def __post_init__(self):
        Generator.__post_init__(self)
        self.check_settings()
        self._paged: tuple[tuple, PagedContext] | None = None

    def build(self, context: Context | str) -> PagedContext:
        """Encode ``context`` (a Context, or a text taken as one source) into reusable KV pages."""
        if isinstance(context, str):
            if not context.strip():
                raise ValueError("RetroLM needs a non-empty context text.")
            doc = Document(context)
            context = Context(query="", pieces=(Chunk.of(doc, 0, len(doc.text)),))
        if not isinstance(context, Context):
            raise TypeError(f"RetroLM builds from a Context or a str, got {type(context).__name__}.")
        return build_paged_context(self, load_causal_lm(self.model, self.device), context, self.system_prompt)

    def _paged_for(self, context: Context) -> PagedContext:
        if not check_context(context).pieces:
            raise ValueError("RetroLM needs the long context as pieces of the Context; it has none.")
        key = tuple((p.doc_id, p.start, p.end, p.text) for p in context.pieces)
        if self._paged is None or self._paged[0] != key:
            self._paged = (key, self.build(context))
        return self._paged[1]

    def generate(self, context: Context) -> Answer:
        answer = self._paged_for(context).answer(context.query, self.max_new_tokens, self.temperature)
        return dataclasses.replace(answer, model=self.model)

    def stream(self, context: Context) -> Iterator[str]:
        paged = self._paged_for(context)
        new: list[int] = []
        shown = ""
        for token in paged.stream_ids(paged.query_ids(context.query), self.max_new_tokens, self.temperature):
            new.append(token)
            text = paged.lm.tokenizer.decode(new, skip_special_tokens=True)
            yield text[len(shown) :]
            shown = text
