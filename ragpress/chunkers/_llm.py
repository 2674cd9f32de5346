"""Batched greedy answers from a chat LLM, shared by the chunkers that prompt one (EDU segmentation,
LLM code partitioning): one ``generate`` call per batch of prompts, not one per prompt."""

from __future__ import annotations

from collections.abc import Sequence

from ragpress.core.models import CausalLM


def answer_prompts(lm: CausalLM, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 8, system: str = "") -> list[str]:
    """Greedy replies of ``lm`` to each user prompt (with an optional system message)."""
    head = [{"role": "system", "content": system}] if system else []
    return lm.chat_batch([head + [{"role": "user", "content": p}] for p in prompts], max_new_tokens, batch_size, desc="LLM prompts")
