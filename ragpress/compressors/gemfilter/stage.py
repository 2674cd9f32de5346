"""GemFilter: early layers of the LLM pick the context tokens (Shi et al., 2024, "Discovering the Gems
in Early Layers: Accelerating Long-Context LLMs with 1000x Input Token Reduction", arXiv:2409.17422;
official code github.com/SalesforceAIResearch/GemFilter).

Algorithm 1 (Sec. 3.2), as the official code runs it:

1. Run only the first ``r`` layers on the whole prompt (Sec. 3.2, "first pass"). Layers before the
   filter layer run with the model's own attention (sdpa), so no ``n x n`` matrix is materialised;
   no KV cache is kept and no logits are computed, and each layer's MLP runs on ``mlp_chunk`` tokens
   at a time (:func:`ragpress.core.attention.chunked_mlp`: the same per-token arithmetic, so the same
   scores up to rounding, with the MLP intermediates held for one chunk instead of the prompt).
2. At filter layer ``r`` take the attention logits of the last query token against every key
   (queries and keys after RoPE, KV heads repeated), sum them over heads, smooth them with an average
   pool of width 5 (``standard_dis_index(..., pool=True, sum_over_heads=True)`` in the official
   code), and keep the ``budget`` best tokens in their original order (Sec. 3.2).
3. Run the full model on the selected tokens only, with fresh positions (Sec. 3.2, "second pass";
   :mod:`ragpress.generators.gemfilter`).

Defaults follow the paper: ``budget = 1024`` tokens (its ``k``) and filter layer 13 of LLaMA-3.1-8B's
32 (0-based; the paper uses 19 of 40 for Mistral-Nemo and 19 of 32 for Phi-3.5), applied to other
models as the relative depth ``13/32``. Only the filter layer's norm and q/k projections run, not its attention and MLP.

Deviations, and why: the logits are scaled by the model's ``1/sqrt(d)`` (the official code uses the raw
inner product; a positive constant changes no ranking) so that ``softmax`` of a row is exactly the
model's attention; keys are streamed in blocks so the filter layer holds no ``[heads, n, d]``
repeated-KV copy. :class:`GemFilter` as a *compressor* may only select source tokens (the generator
re-adds the instructions and question), so there ``budget`` counts source tokens; the generator selects
over the whole prompt as the paper does. Sliding-window layers are scored over all keys, as in the
official code.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F

from ragpress.compressors.base import Compressor
from ragpress.core.attention import last_row_logits
from ragpress.core.lm import CausalLM
from ragpress.core.loaders import load_causal_lm
from ragpress.core.prompt import PromptLayout, chat_messages
from ragpress.core.types import Chunk, Context

PAPER_FILTER_DEPTH = 13 / 32  # layer 13 of LLaMA-3.1-8B-Instruct's 32 (official needle_eval.py)


def filter_layer_index(num_layers: int, depth: float = PAPER_FILTER_DEPTH, layer: int | None = None) -> int:
    """The 0-based filter layer: ``layer`` if given, else ``round(depth * num_layers)``."""
    index = round(depth * num_layers) if layer is None else layer
    if not 0 <= index < num_layers:
        raise ValueError(f"Filter layer {index} does not exist in a {num_layers}-layer model; pick 0..{num_layers - 1}.")
    return index


def select_tokens(logits: torch.Tensor, k: int, pool_kernel: int = 5, candidates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the ``k`` best tokens in prompt order, and every token's score (Sec. 3.2, step 2):
    logits summed over heads (and query rows; masked future keys add nothing), average-pooled over
    ``pool_kernel`` neighbours, then top-k among ``candidates`` (a bool mask; all tokens if None)."""
    scores = torch.where(torch.isfinite(logits), logits, 0.0).sum(dim=(0, 1))
    if pool_kernel > 1:
        scores = F.avg_pool1d(scores[None, None], pool_kernel, stride=1, padding=pool_kernel // 2)[0, 0]
    ranked = scores if candidates is None else scores.masked_fill(~candidates.to(scores.device), float("-inf"))
    available = int(ranked.isfinite().sum())
    top = torch.topk(ranked, min(k, available)).indices
    return torch.sort(top).values.cpu(), scores.cpu()


@dataclasses.dataclass
class GemFilterSettings:
    """Settings shared by the GemFilter compressor and generator (paper defaults)."""

    model: str = "smollm2-135m"
    budget: int = 1024  # tokens kept, the paper's k (Sec. 4: 1024 or 2048)
    filter_depth: float = PAPER_FILTER_DEPTH  # relative depth of the filter layer, used when filter_layer is None
    filter_layer: int | None = None  # 0-based filter layer; overrides filter_depth
    query_rows: int = 1  # last prompt tokens whose attention scores the context (official: 1)
    pool_kernel: int = 5  # average-pool width over neighbouring tokens (official: 5)
    key_block: int = 8192  # keys scored per block at the filter layer (memory, not results)
    mlp_chunk: int | None = 8192  # first-pass MLP tokens per chunk (memory, not results); None = all at once
    device: str | None = None

    def check_settings(self) -> None:
        for name in ("budget", "query_rows", "pool_kernel", "key_block"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"GemFilter {name} must be a positive integer, got {getattr(self, name)!r}.")
        if self.mlp_chunk is not None and (not isinstance(self.mlp_chunk, int) or self.mlp_chunk < 1):
            raise ValueError(f"GemFilter mlp_chunk must be a positive integer or None, got {self.mlp_chunk!r}.")
        if self.pool_kernel % 2 == 0:
            raise ValueError(f"pool_kernel must be odd so pooling keeps the length, got {self.pool_kernel}.")
        if not 0 <= self.filter_depth < 1:
            raise ValueError(f"filter_depth is a fraction of the layers in [0, 1), got {self.filter_depth}.")

    def language_model(self) -> CausalLM:
        return load_causal_lm(self.model, device=self.device)

    def select(self, lm: CausalLM, ids: torch.Tensor, candidates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first pass: ``(selected indices, scores)``; every candidate when ``budget`` covers them."""
        allowed = torch.ones(len(ids), dtype=torch.bool) if candidates is None else candidates
        if self.budget >= int(allowed.sum()):
            return torch.nonzero(allowed)[:, 0], torch.zeros(len(ids))
        layer = filter_layer_index(lm.model.config.num_hidden_layers, self.filter_depth, self.filter_layer)
        logits = last_row_logits(lm.model, ids[None], layer, min(self.query_rows, len(ids)), self.key_block, self.mlp_chunk)
        return select_tokens(logits, self.budget, self.pool_kernel, candidates)


@dataclasses.dataclass
class GemFilter(GemFilterSettings, Compressor):
    """Keep the ``budget`` source tokens that the filter layer's last query attends to most, as
    exact source spans in their original order. The filter pass reads the prompt that ragpress
    generators build (:func:`~ragpress.core.prompt.chat_messages`), so the question sits at the end
    where the paper puts it."""

    method: ClassVar[str] = "gemfilter"

    def __post_init__(self):
        self.check_settings()

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        lm = self.language_model()
        layout = PromptLayout.build(lm, chat_messages(Context(query=query, pieces=chunks)), chunks)
        sources = layout.sources
        before = int(sources.sum())
        if self.budget >= before:  # nothing to cut: hand the chunks on whole
            return Context(query=query, pieces=chunks, tokens_before=before, tokens_after=before)
        selected, scores = self.select(lm, layout.ids, sources)
        return Context(
            query=query,
            pieces=layout.spans(selected, scores),
            tokens_before=before,
            tokens_after=len(selected),
            metadata={"prompt_tokens": len(layout.ids)},
        )
