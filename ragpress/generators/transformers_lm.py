"""Local generation with any ``transformers`` causal LM through its chat template."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from ragpress.core.models import load_causal_lm
from ragpress.core.types import Answer, Context
from ragpress.generators.base import Generator


@dataclasses.dataclass
class TransformersGenerator(Generator):
    """Greedy by default (``temperature=0``); sampling is seeded by ``seed``, so a fixed seed gives
    the same answer. ``repetition_penalty`` > 1 discourages the loops small models fall into."""

    model: str = "smollm2-135m"
    device: str | None = None
    seed: int = 0
    repetition_penalty: float = 1.0

    def run(self, context: Context) -> Answer:
        lm = load_causal_lm(self.model, self.device)
        ids = lm.chat_ids(self.messages(context))
        new = lm.generate(ids, self.max_new_tokens, self.temperature, self.seed, repetition_penalty=self.repetition_penalty)
        text = lm.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Answer(text, context, self.model, prompt_tokens=ids.shape[1], completion_tokens=len(new))

    def stream(self, context: Context) -> Iterator[str]:
        lm = load_causal_lm(self.model, self.device)
        ids = lm.chat_ids(self.messages(context))
        yield from lm.stream(ids, self.max_new_tokens, self.temperature, self.seed, repetition_penalty=self.repetition_penalty)
