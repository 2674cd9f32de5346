"""Generators: ``Context -> Answer``.

The base class builds the prompt from a context (numbered sources, then the question) so every
back end asks the same thing; back ends implement :meth:`Generator.run` and :meth:`Generator.stream`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import ClassVar

from ragpress.core.stage import Stage
from ragpress.core.types import Answer, Context

SYSTEM_PROMPT = (
    "Answer the question using only the numbered sources. "
    "Be brief. If the sources do not contain the answer, say so."
)
SOFT_CONTEXT = "<|soft context|>"


@dataclasses.dataclass
class Generator(Stage):
    kind: ClassVar[str] = "generator"
    max_new_tokens: int = 128
    temperature: float = 0.0
    system_prompt: str = SYSTEM_PROMPT

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if self.temperature < 0:
            raise ValueError(f"temperature cannot be negative, got {self.temperature}.")

    def run(self, context: Context) -> Answer:
        raise NotImplementedError

    def stream(self, context: Context) -> Iterator[str]:
        """Yield the answer's text as it is generated."""
        raise NotImplementedError

    def messages(self, context: Context) -> list[dict[str, str]]:
        """Chat messages asking ``context.query`` over ``context.pieces`` as numbered sources. A soft
        context (``context.embeddings``) stands in the sources' place as :data:`SOFT_CONTEXT`, which
        a back end that accepts input embeddings swaps for the embedding rows."""
        if not isinstance(context, Context):
            raise TypeError(f"A generator takes a Context, got {type(context).__name__}; put a compressor before it.")
        sources = "\n\n".join(f"[{i}] {piece.text.strip()}" for i, piece in enumerate(context.pieces, 1))
        if context.embeddings is not None:
            sources = "\n\n".join(filter(None, (SOFT_CONTEXT, sources)))
        user = f"Sources:\n{sources}\n\nQuestion: {context.query}" if sources else f"Question: {context.query}"
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]
