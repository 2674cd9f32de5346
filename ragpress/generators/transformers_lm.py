"""Local generation with any ``transformers`` causal LM through its chat template.

A soft context (``Context.embeddings``, from CompLLM or ARC-Encoder) enters the decoder as input
embeddings in the sources' place, mixed with the prompt's own token embeddings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import ClassVar

from ragpress.core.decode import check_decode
from ragpress.core.loaders import load_causal_lm
from ragpress.core.prompt import SOFT_CONTEXT
from ragpress.core.types import Answer, Context
from ragpress.generators.base import Generator


@dataclasses.dataclass
class TransformersGenerator(Generator):
    """Greedy by default (``temperature=0``); sampling is seeded by ``seed``, so a fixed seed gives
    the same answer. ``repetition_penalty`` > 1 discourages the loops small models fall into.
    :meth:`run_batch` (used by ``Pipeline.run_batch``) generates greedy answers in batches.
    ``decode`` picks the generation path (:mod:`ragpress.core.decode`): ``"auto"`` (static KV cache
    and compiled steps on CUDA, eager elsewhere), ``"eager"`` or ``"static"``."""

    method: ClassVar[str] = "transformers"
    model: str = "smollm2-135m"
    device: str | None = None
    dtype: str | None = None  # default: bfloat16 on GPU, float32 on CPU
    seed: int = 0
    repetition_penalty: float = 1.0
    batch_size: int | None = None  # contexts per generate call; None sizes it to the device
    decode: str = "auto"

    def __post_init__(self):
        super().__post_init__()
        check_decode(self.decode)

    def generate(self, context: Context) -> Answer:
        lm, prompt = self._prompt(context)
        new = lm.generate(prompt, self.max_new_tokens, self.temperature, self.seed, self.decode, repetition_penalty=self.repetition_penalty)
        text = lm.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Answer(text, context, self.model, prompt_tokens=prompt.shape[1], completion_tokens=len(new))

    def generate_batch(self, contexts: list[Context]) -> list[Answer]:
        """Answers to many contexts. Greedy decoding runs them in left-padded batches of
        ``batch_size`` (None: sized to the device, 8 on the CPU), the same answers as :meth:`run` up
        to float rounding; sampling runs one at a time so that each answer depends only on its seed."""
        if self.temperature > 0 or not contexts:
            return [self.generate(c) for c in contexts]
        lm = load_causal_lm(self.model, self.device, self.dtype)
        rows = [self._prompt(c)[1][0] for c in contexts]
        replies = lm.generate_batch(rows, self.max_new_tokens, self.batch_size, decode=self.decode, repetition_penalty=self.repetition_penalty)
        return [
            Answer(lm.tokenizer.decode(new, skip_special_tokens=True).strip(), c, self.model, prompt_tokens=len(row), completion_tokens=len(new))
            for c, row, new in zip(contexts, rows, replies)
        ]

    def stream(self, context: Context) -> Iterator[str]:
        lm, prompt = self._prompt(context)
        yield from lm.stream(prompt, self.max_new_tokens, self.temperature, self.seed, self.decode, repetition_penalty=self.repetition_penalty)

    def _prompt(self, context: Context):
        """The loaded model and the prompt: token ids, or input embeddings for a soft context."""
        lm = load_causal_lm(self.model, self.device, self.dtype)
        messages = self.messages(context)
        if context.embeddings is None:
            return lm, lm.chat_ids(messages)
        decoder = context.metadata.get("decoder")
        if decoder is not None and decoder != self.model:
            raise ValueError(
                f"This soft context was compressed for the decoder {decoder!r}, but the generator runs {self.model!r}; "
                f"soft embeddings only mean something to the decoder they were trained for: use "
                f"TransformersGenerator(model={decoder!r})."
            )
        return lm, lm.chat_embeds(messages, SOFT_CONTEXT, context.embeddings)

