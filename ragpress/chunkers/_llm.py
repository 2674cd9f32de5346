"""Batched greedy answers from a chat LLM, shared by the chunkers that prompt one (EDU segmentation,
LLM code partitioning). Prompts are left-padded into one batch so a list of prompts costs one
``generate`` call per batch, not one per prompt."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ragpress.core.models import CausalLM


@torch.inference_mode()
def answer_prompts(
    lm: CausalLM, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 8, system: str = ""
) -> list[str]:
    """Greedy replies of ``lm`` to each user prompt (with an optional system message)."""
    rows = []
    for prompt in prompts:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        rows.append(lm.chat_ids(messages)[0].tolist())
    pad = lm.tokenizer.pad_token_id
    replies: list[str] = []
    batches = range(0, len(rows), batch_size)
    for i in tqdm(batches, desc="LLM prompts", disable=len(batches) < 4, leave=False):
        batch = rows[i : i + batch_size]
        width = max(len(r) for r in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(batch):  # left padding keeps every prompt's end at the last column
            ids[r, width - len(row) :] = torch.tensor(row)
            mask[r, width - len(row) :] = 1
        out = lm.model.generate(
            input_ids=ids.to(lm.device),
            attention_mask=mask.to(lm.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
        replies.extend(lm.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True))
    return replies
