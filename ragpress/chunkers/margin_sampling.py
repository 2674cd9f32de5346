"""Meta-Chunking, Margin Sampling Chunking: Zhao et al., "Meta-Chunking: Learning Efficient Text
Segmentation via Logical Perception" (arXiv:2410.12788), §3 "Margin Sampling Chunking"; official
code: github.com/IAAR-Shanghai/Meta-Chunking ``tools/margin_sampling_chunking.py``.

For each next sentence the LM is asked, in its chat format, whether to split "A B" into "A" and
"B" (answer 1) or keep it whole (answer 2), where A is the chunk built so far. The margin
``p("2") - p("1")`` of the next-token distribution decides: above the threshold the sentence joins
the chunk, otherwise it starts a new one. The threshold starts at ``threshold`` (0) and, when
``dynamic_window`` is set (official: 5), becomes the mean of the last ``dynamic_window`` margins
once that many exist.

Batching: the question for a sentence depends on earlier decisions (A grows), so prompts are
built speculatively for the next ``batch_size`` sentences assuming each earlier one joins; one
batched forward scores them, decisions are taken in order, and the prompts after the first split
are rebuilt. The result equals the one-prompt-at-a-time loop. ``context="sentence"`` asks about
the previous sentence alone instead of the whole chunk (a *deviation*: every prompt is then known
in advance and one batched pass per ``batch_size`` sentences does them all).

Other deviations: A and "A B" are quoted as they stand in the source (the code joins with one
space); the prompt goes through the model's own chat template (the code hard-codes Qwen's ChatML,
which SmolLM2 shares).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from tqdm.auto import tqdm

from ragpress.chunkers.meta_chunking import MetaChunker, scorable_text
from ragpress.core.models import CausalLM

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


@dataclasses.dataclass
class MarginSamplingChunker(MetaChunker):
    """Margin Sampling Chunking (Meta-Chunking §3). ``threshold``: the starting (or, with
    ``dynamic_window=None``, fixed) margin a sentence must exceed to join the chunk;
    ``dynamic_window``: how many recent margins the dynamic threshold averages (official 5);
    ``context``: ``"chunk"`` (official) or ``"sentence"`` (see module docstring); ``batch_size``:
    prompts per forward pass. With ``context="chunk"`` the prompts after a split are wasted, and
    with the dynamic threshold (a running mean) about every other sentence splits: batches pay off
    where a forward of ``batch_size`` prompts costs little more than one (GPU); on CPU use 1."""

    threshold: float = 0.0
    dynamic_window: int | None = 5
    context: Literal["chunk", "sentence"] = "chunk"
    batch_size: int = 4

    def __post_init__(self):
        super().__post_init__()
        if self.context not in ("chunk", "sentence"):
            raise ValueError(f"context must be 'chunk' or 'sentence', got {self.context!r}.")
        if self.batch_size < 1 or (self.dynamic_window is not None and self.dynamic_window < 1):
            raise ValueError(
                "batch_size and dynamic_window must be at least 1 (dynamic_window=None fixes the threshold)."
            )

    def threshold_after(self, margins: list[float]) -> float:
        """The threshold for the next decision, given the margins of the decisions so far."""
        if self.dynamic_window is None or len(margins) < self.dynamic_window:
            return self.threshold
        recent = margins[-self.dynamic_window :]
        return sum(recent) / len(recent)

    def meta_chunk_ends(self, text: str, spans: list[tuple[int, int]]) -> list[int]:
        lm, text = self.lm(), scorable_text(text)
        ends, margins, chunk_start, k = [], [], 0, 1
        progress = tqdm(total=len(spans) - 1, desc="margin sampling", disable=len(spans) < 50, leave=False)
        while k < len(spans):
            batch = range(k, min(k + self.batch_size, len(spans)))
            first = [chunk_start if self.context == "chunk" else j - 1 for j in batch]
            pairs = [
                (text[spans[a][0] : spans[j - 1][1]], text[slice(*spans[j])], text[spans[a][0] : spans[j][1]])
                for a, j in zip(first, batch)
            ]
            for j, margin in zip(batch, keep_margins(lm, pairs)):
                joins = margin > self.threshold_after(margins)
                margins.append(margin)
                k = j + 1
                if not joins:
                    ends.append(j - 1)
                    chunk_start = j
                    if self.context == "chunk":
                        break  # later prompts in this batch assumed j would join
            progress.update(k - batch.start)
        progress.close()
        return ends + [len(spans) - 1]
