"""GemFilter end to end (Shi et al., 2024, arXiv:2409.17422, Algorithm 1): the first pass runs the
early layers on the whole prompt and keeps the ``k`` tokens the filter layer's last query attends to
most (:mod:`ragpress.compressors.gemfilter` holds that selection); the second pass runs the full
model on those tokens alone, with fresh positions (Sec. 3.2), and generates the answer.

As in the paper, the selection ranges over the whole prompt (instructions and question included),
so ``budget`` is the length of the prompt the full model reads.
"""

from __future__ import annotations

from ragpress.core.extras import require

require("torch", what="GemFilterGenerator")

import dataclasses
from collections.abc import Iterator
from typing import ClassVar

import torch

from ragpress.compressors.gemfilter import GemFilterSettings
from ragpress.core.decode import check_decode
from ragpress.core.prompt import PromptLayout
from ragpress.core.types import Answer, Context
from ragpress.generators.base import Generator


@dataclasses.dataclass
class GemFilterGenerator(GemFilterSettings, Generator):
    """Answer ``context.query`` from ``context.pieces`` with GemFilter's two passes; the answer's
    context holds the source spans the full model actually read. The second pass decodes on the path
    ``decode`` names (:mod:`ragpress.core.decode`: ``"auto"`` is a static cache with compiled steps
    on CUDA, eager elsewhere)."""

    method: ClassVar[str] = "gemfilter"
    decode: str = "auto"

    def __post_init__(self):
        Generator.__post_init__(self)
        self.check_settings()
        check_decode(self.decode)

    def _second_pass_input(self, context: Context) -> tuple[torch.Tensor, Context]:
        lm = self.language_model()
        layout = PromptLayout.build(lm, self.messages(context), context.pieces)
        selected, scores = self.select(lm, layout.ids)
        sources = layout.sources
        read = Context(
            query=context.query,
            pieces=layout.spans(selected, scores),
            tokens_before=int(sources.sum()),
            tokens_after=int(sources[selected].sum()),
            metadata={"method": self.method, "prompt_tokens": len(layout.ids), "selected_tokens": len(selected)},
        )
        return layout.ids[selected][None], read

    def generate(self, context: Context) -> Answer:
        ids, read = self._second_pass_input(context)
        lm = self.language_model()
        new = lm.generate(ids, self.max_new_tokens, self.temperature, decode=self.decode)
        return Answer(
            text=lm.tokenizer.decode(new, skip_special_tokens=True).strip(),
            context=read,
            model=self.model,
            prompt_tokens=ids.shape[1],
            completion_tokens=len(new),
        )

    def stream(self, context: Context) -> Iterator[str]:
        ids, _ = self._second_pass_input(context)
        yield from self.language_model().stream(ids, self.max_new_tokens, self.temperature, decode=self.decode)
