"""Meta-Chunking's margin sampling (Zhao et al., arXiv:2410.12788, §3 "Margin Sampling Chunking";
official ``tools/margin_sampling_chunking.py``): the LM is asked, in its chat format, whether to split
"A B" into "A" and "B" (answer 1) or keep it whole (answer 2); the margin ``p("2") - p("1")`` of the
next-token distribution decides. :class:`MarginWalk` takes the decisions of one document;
:class:`ragpress.chunkers.meta_chunking.MarginSamplingChunker` advances the walks of many together."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from ragpress.core.device import forward_batches, left_padded, padded_attention
from ragpress.core.lm import CausalLM

SYSTEM = "You are a helpful assistant."
# The official English prompt byte for byte, the 8 spaces that open its lines 2-4 included: they come
# from the indentation of its triple-quoted string, and the model reads them (margins moved by up to
# 0.2 without them on SmolLM2-135M, flipping decisions against the official code's).
QUESTION = (
    "This is a text chunking task. You are a text analysis expert. Please choose one of the following two "
    "options based on the logical structure and semantic content of the provided sentence:\n"
    '        1. Split "{joint}" into "{first}" and "{second}" two parts;\n'
    '        2. Keep "{joint}" unsplit in its original form;\n'
    "        Please answer 1 or 2."
)


def _answer_id(lm: CausalLM, answer: str) -> int:
    ids = lm.encode(answer)
    if len(ids) != 1:
        raise ValueError(f"Margin sampling needs {answer!r} to be one token of {lm.name}'s vocabulary; it is {ids}.")
    return ids[0]


def prompt_ids(lm: CausalLM, pairs: list[tuple[str, str, str]]) -> list[list[int]]:
    """Token ids of the question about each ``(first, second, joint)`` in ``lm``'s chat format (for a
    ChatML model, the official code's hand-written prompt token for token), tokenized together."""
    return lm.chat_ids_batch([
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION.format(joint=joint, first=first, second=second)}]
        for first, second, joint in pairs
    ])


@torch.inference_mode()
def keep_margins(lm: CausalLM, pairs: list[tuple[str, str, str]], batch_size: int | None = None) -> list[float]:
    """``p("2") - p("1")`` (keep minus split) for each ``(first, second, joint)`` prompt: prompts sorted
    by length, left-padded into batches of ``batch_size`` prompts (``None``: as many as
    :func:`~ragpress.core.device.token_budget` allows), one forward each that computes only the last
    position's logits, and one copy of all margins to the host at the end."""
    split_id, keep_id = _answer_id(lm, "1"), _answer_id(lm, "2")
    rows = prompt_ids(lm, pairs)
    margins = torch.empty(len(rows), device=lm.device)
    for batch in forward_batches([len(row) for row in rows], batch_size, lm.device, lm.model.config, logits=False, dtype=lm.model.dtype):
        ids, mask, positions = left_padded([rows[i] for i in batch], lm.tokenizer.pad_token_id, lm.device)
        with padded_attention(lm.device):
            logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits[:, -1]
        probs = torch.softmax(logits.float(), dim=-1)
        margins[torch.tensor(batch, device=lm.device)] = probs[:, keep_id] - probs[:, split_id]
    return margins.tolist()


@dataclasses.dataclass
class MarginWalk:
    """One document's margin-sampling decisions so far (§3 "Margin Sampling Chunking"): the
    sentences already decided, the margins they got, where the current chunk starts and which
    sentence is asked about next (``k``). Many walks advance together, one batch of prompts each step."""

    text: str
    spans: list[tuple[int, int]]
    ends: list[int] = dataclasses.field(default_factory=list)
    margins: list[float] = dataclasses.field(default_factory=list)
    chunk_start: int = 0
    k: int = 1

    @property
    def done(self) -> bool:
        return self.k >= len(self.spans)

    def pairs(self, ahead: int, context: str) -> list[tuple[str, str, str]]:
        """Prompts for the next ``ahead`` sentences, assuming each one before joins the chunk."""
        spans, text = self.spans, self.text
        asked = range(self.k, min(self.k + ahead, len(spans)))
        firsts = [self.chunk_start if context == "chunk" else j - 1 for j in asked]
        return [(text[spans[a][0] : spans[j - 1][1]], text[slice(*spans[j])], text[spans[a][0] : spans[j][1]]) for a, j in zip(firsts, asked)]

    def take(self, margins: list[float], threshold_after: Callable[[list[float]], float], context: str) -> None:
        """Decide in order from the margins of :meth:`pairs`; with ``context="chunk"`` the answers
        after the first split are void (their prompts assumed a join) and are asked again."""
        for margin in margins:
            joins = margin > threshold_after(self.margins)
            self.margins.append(margin)
            self.k += 1
            if not joins:
                self.ends.append(self.k - 2)
                self.chunk_start = self.k - 1
                if context == "chunk":
                    return
