"""Meta-Chunking's margin sampling (Zhao et al., arXiv:2410.12788, §3 "Margin Sampling Chunking";
official ``tools/margin_sampling_chunking.py``): the LM is asked, in its chat format, whether to split
"A B" into "A" and "B" (answer 1) or keep it whole (answer 2); the margin ``p("2") - p("1")`` of the
next-token distribution decides. The decisions are taken in
:class:`ragpress.chunkers.meta_chunking.MarginSamplingChunker`."""

from __future__ import annotations

import torch

from ragpress.core.lm import CausalLM

SYSTEM = "You are a helpful assistant."
QUESTION = (
    "This is a text chunking task. You are a text analysis expert. Please choose one of the following two "
    "options based on the logical structure and semantic content of the provided sentence:\n"
    '1. Split "{joint}" into "{first}" and "{second}" two parts;\n'
    '2. Keep "{joint}" unsplit in its original form;\n'
    "Please answer 1 or 2."
)


def _answer_id(lm: CausalLM, answer: str) -> int:
    ids = lm.encode(answer)
    if len(ids) != 1:
        raise ValueError(f"Margin sampling needs {answer!r} to be one token of {lm.name}'s vocabulary; it is {ids}.")
    return ids[0]


@torch.inference_mode()
def keep_margins(lm: CausalLM, pairs: list[tuple[str, str, str]]) -> list[float]:
    """``p("2") - p("1")`` (keep minus split) for each ``(first, second, joint)`` prompt, from one
    left-padded batched forward pass that computes only the last position's logits."""
    split_id, keep_id = _answer_id(lm, "1"), _answer_id(lm, "2")
    rows = []
    for first, second, joint in pairs:
        question = QUESTION.format(joint=joint, first=first, second=second)
        rows.append(lm.chat_ids([{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])[0])
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), lm.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :], mask[r, width - len(row) :] = row, 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift positions
    logits = (
        lm.model(
            input_ids=ids.to(lm.device),
            attention_mask=mask.to(lm.device),
            position_ids=positions.to(lm.device),
            logits_to_keep=1,
        )
        .logits[:, -1]
        .float()
    )
    probs = torch.softmax(logits, dim=-1)
    return (probs[:, keep_id] - probs[:, split_id]).tolist()
