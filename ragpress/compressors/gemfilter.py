"""GemFilter: early layers of the LLM pick the context tokens (Shi et al., 2024, "Discovering the Gems
in Early Layers: Accelerating Long-Context LLMs with 1000x Input Token Reduction", arXiv:2409.17422;
official code github.com/SalesforceAIResearch/GemFilter).

Algorithm 1 (Sec. 3.2), as the official code runs it:

1. Run only the first ``r`` layers on the whole prompt (Sec. 3.2, "first pass"). Layers before the
   filter layer run with the model's own attention (sdpa), so no ``n x n`` matrix is materialised;
   no KV cache is kept and no logits are computed, and each layer's MLP runs on ``mlp_chunk`` tokens
   at a time (:mod:`ragpress.compressors.mlp_chunks`: the same per-token arithmetic, so the same
   scores up to rounding, with the MLP intermediates held for one chunk instead of the prompt).
2. At filter layer ``r`` take the attention logits of the last query token against every key
   (queries and keys after RoPE, KV heads repeated), sum them over heads, smooth them with an average
   pool of width 5 (``standard_dis_index(..., pool=True, sum_over_heads=True)`` in the official
   code), and keep the ``k`` best tokens in their original order (Sec. 3.2).
3. Run the full model on the selected tokens only, with fresh positions (Sec. 3.2, "second pass";
   :mod:`ragpress.generators.gemfilter`).

Defaults follow the paper: ``k = 1024`` and filter layer 13 of LLaMA-3.1-8B's 32 (0-based; the paper
uses 19 of 40 for Mistral-Nemo and 19 of 32 for Phi-3.5), applied to other models as the relative
depth ``13/32``. Only the filter layer's norm and q/k projections run, not its attention and MLP.

Deviations, and why: the logits are scaled by the model's ``1/sqrt(d)`` (the official code uses the raw
inner product; a positive constant changes no ranking) so that ``softmax`` of a row is exactly the
model's attention; keys are streamed in blocks so the filter layer holds no ``[heads, n, d]``
repeated-KV copy. :class:`GemFilter` as a *compressor* may only select source tokens (the generator
re-adds the instructions and question), so there ``k`` counts source tokens; the generator selects
over the whole prompt as the paper does. Sliding-window layers are scored over all keys, as in the
official code.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ragpress.compressors.base import Compressor
from ragpress.compressors.mlp_chunks import chunked_mlp
from ragpress.core.models import CausalLM, load_causal_lm
from ragpress.core.types import Chunk, Context
from ragpress.generators.base import Generator

PAPER_FILTER_DEPTH = 13 / 32  # layer 13 of LLaMA-3.1-8B-Instruct's 32 (official needle_eval.py)


class _ReachedFilterLayer(Exception):
    """Stops the first pass at the filter layer (it carries the layer's inputs)."""

    def __init__(self, hidden: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor]):
        self.hidden, self.position_embeddings = hidden, position_embeddings


def filter_layer_index(num_layers: int, depth: float = PAPER_FILTER_DEPTH, layer: int | None = None) -> int:
    """The 0-based filter layer: ``layer`` if given, else ``round(depth * num_layers)``."""
    index = round(depth * num_layers) if layer is None else layer
    if not 0 <= index < num_layers:
        raise ValueError(f"Filter layer {index} does not exist in a {num_layers}-layer model; pick 0..{num_layers - 1}.")
    return index


def _heads(attn: Any, proj: str, norm: str, x: torch.Tensor) -> torch.Tensor:
    """``[1, heads, t, head_dim]`` projections, with the per-head q/k norm of Qwen3/Gemma3 if any."""
    states = getattr(attn, proj)(x).view(*x.shape[:-1], -1, attn.head_dim)
    if hasattr(attn, norm):
        states = getattr(attn, norm)(states)
    return states.transpose(1, 2)


@torch.inference_mode()
def last_row_logits(
    model: Any, input_ids: torch.Tensor, layer: int, query_rows: int = 1, key_block: int = 8192, mlp_chunk: int | None = 8192
) -> torch.Tensor:
    """Pre-softmax attention logits ``[heads, query_rows, n]`` (float32) of the last ``query_rows``
    prompt tokens at decoder layer ``layer`` (Sec. 3.2, step 1); ``softmax`` over the last axis gives
    the model's attention rows. Future keys of earlier rows are ``-inf``. Layers before ``layer`` run
    their MLP on ``mlp_chunk`` tokens at a time (``None``: all at once)."""
    decoder = model.get_decoder()
    block = decoder.layers[layer]

    def stop(module, args, kwargs):
        raise _ReachedFilterLayer(args[0] if args else kwargs["hidden_states"], kwargs["position_embeddings"])

    handle = block.register_forward_pre_hook(stop, with_kwargs=True)
    try:
        with chunked_mlp(model, mlp_chunk, range(layer)):
            decoder(input_ids=input_ids.to(model.device), use_cache=False)
        raise RuntimeError(f"Layer {layer} of {type(model).__name__} was never called; GemFilter needs a standard decoder stack.")
    except _ReachedFilterLayer as reached:
        hidden, (cos, sin) = reached.hidden, reached.position_embeddings
    finally:
        handle.remove()

    attn, n = block.self_attn, hidden.shape[1]
    rope = importlib.import_module(type(attn).__module__).apply_rotary_pos_emb
    groups = attn.num_key_value_groups
    queries = _heads(attn, "q_proj", "q_norm", block.input_layernorm(hidden[:, -query_rows:]))
    queries = rope(queries, queries, cos[:, -query_rows:], sin[:, -query_rows:])[0]
    # Query head h reads KV head h // groups (repeat_kv); grouping the queries avoids copying keys.
    queries = queries.reshape(1, -1, groups * query_rows, attn.head_dim).float()
    logits = torch.empty(queries.shape[1], groups * query_rows, n, device=hidden.device)
    for start in range(0, n, key_block):
        stop_at = min(start + key_block, n)
        keys = _heads(attn, "k_proj", "k_norm", block.input_layernorm(hidden[:, start:stop_at]))
        keys = rope(keys, keys, cos[:, start:stop_at], sin[:, start:stop_at])[1]
        logits[:, :, start:stop_at] = (queries @ keys.float().transpose(-1, -2))[0] * attn.scaling
    logits = logits.view(-1, query_rows, n)
    softcap = getattr(attn, "attn_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    future = torch.arange(n, device=logits.device)[None, :] > torch.arange(n - query_rows, n, device=logits.device)[:, None]
    return logits.masked_fill(future, float("-inf"))


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
class PromptLayout:
    """A rendered prompt with each source piece's place in it, to map tokens back to sources."""

    ids: torch.Tensor  # [n] token ids of the prompt
    offsets: np.ndarray  # [n, 2] character span of each token in the prompt
    pieces: Sequence[Chunk]
    starts: np.ndarray  # where each piece's stripped text starts in the prompt
    leads: np.ndarray  # leading whitespace stripped from each piece
    lengths: np.ndarray  # length of each piece's stripped text
    owner: np.ndarray  # [n] index of the piece a token overlaps, -1 for prompt scaffolding

    @classmethod
    def build(cls, lm: CausalLM, messages: list[dict[str, str]], pieces: Sequence[Chunk]) -> PromptLayout:
        """Render ``messages`` exactly as :meth:`CausalLM.chat_ids` does and find each piece, which
        :meth:`Generator.messages` writes as ``[i] <stripped text>``, in the rendered text."""
        tokenizer = lm.tokenizer
        if tokenizer.chat_template is None:
            prompt, special = "\n\n".join(m["content"] for m in messages) + "\n\nAnswer:", True
        else:
            prompt, special = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), False
        starts, leads, lengths, cursor = [], [], [], 0
        for i, piece in enumerate(pieces, 1):
            text, marker = piece.text.strip(), f"[{i}] "
            at = prompt.find(marker + text, cursor)
            if at < 0:
                raise RuntimeError(f"Source [{i}] is not in the rendered prompt; the generator's source layout changed.")
            starts.append(at + len(marker))
            leads.append(len(piece.text) - len(piece.text.lstrip()))
            lengths.append(len(text))
            cursor = starts[-1] + len(text)
        encoded = tokenizer(prompt, add_special_tokens=special, return_offsets_mapping=True)
        offsets = np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        starts_a, lengths_a = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        owner = np.full(len(offsets), -1, dtype=np.int64)
        if len(pieces):
            ends = starts_a + lengths_a
            first = np.minimum(np.searchsorted(ends, offsets[:, 0], side="right"), len(ends) - 1)
            overlap = np.minimum(offsets[:, 1], ends[first]) > np.maximum(offsets[:, 0], starts_a[first])
            owner[overlap] = first[overlap]  # the token shares at least one character with that piece
        return cls(
            ids=torch.tensor(encoded["input_ids"]),
            offsets=offsets,
            pieces=list(pieces),
            starts=starts_a,
            leads=np.asarray(leads, dtype=np.int64),
            lengths=lengths_a,
            owner=owner,
        )

    @property
    def sources(self) -> torch.Tensor:
        """Bool mask of the tokens that overlap a source piece."""
        return torch.from_numpy(self.owner >= 0)

    def spans(self, selected: torch.Tensor, scores: torch.Tensor) -> tuple[Chunk, ...]:
        """The selected source tokens as exact spans of their chunks, adjacent tokens merged; each
        span's score is the mean pooled score of its tokens."""
        merged: list[list[int]] = []  # [piece, lo, hi, score sum, tokens], lo/hi in chunk chars
        for t in selected.tolist():
            p = int(self.owner[t])
            if p < 0:
                continue
            a, b = self.offsets[t]
            base = self.starts[p] - self.leads[p]  # prompt position of the chunk's first character
            lo = max(a, self.starts[p]) - base
            hi = min(b, self.starts[p] + self.lengths[p]) - base
            if merged and merged[-1][0] == p and lo <= merged[-1][2]:
                merged[-1][2] = max(merged[-1][2], hi)
                merged[-1][3] += float(scores[t])
                merged[-1][4] += 1
            else:
                merged.append([p, lo, hi, float(scores[t]), 1])
        out = []
        for p, lo, hi, total, count in merged:
            chunk = self.pieces[p]
            out.append(
                Chunk(
                    doc_id=chunk.doc_id,
                    start=chunk.start + lo,
                    end=chunk.start + hi,
                    text=chunk.text[lo:hi],
                    score=total / count,
                    token_count=count,
                    metadata={"source_piece": p},
                )
            )
        return tuple(out)


@dataclasses.dataclass
class GemFilterSettings:
    """Settings shared by the GemFilter compressor and generator (paper defaults)."""

    model: str = "smollm2-135m"
    k: int = 1024  # tokens kept (Sec. 4: 1024 or 2048)
    filter_depth: float = PAPER_FILTER_DEPTH  # relative depth of the filter layer, used when filter_layer is None
    filter_layer: int | None = None  # 0-based filter layer; overrides filter_depth
    query_rows: int = 1  # last prompt tokens whose attention scores the context (official: 1)
    pool_kernel: int = 5  # average-pool width over neighbouring tokens (official: 5)
    key_block: int = 8192  # keys scored per block at the filter layer (memory, not results)
    mlp_chunk: int | None = 8192  # first-pass MLP tokens per chunk (memory, not results); None = all at once
    device: str | None = None

    def check_settings(self) -> None:
        for name in ("k", "query_rows", "pool_kernel", "key_block"):
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
        """The first pass: ``(selected indices, scores)``; every candidate when ``k`` covers them."""
        allowed = torch.ones(len(ids), dtype=torch.bool) if candidates is None else candidates
        if self.k >= int(allowed.sum()):
            return torch.nonzero(allowed)[:, 0], torch.zeros(len(ids))
        layer = filter_layer_index(lm.model.config.num_hidden_layers, self.filter_depth, self.filter_layer)
        logits = last_row_logits(lm.model, ids[None], layer, min(self.query_rows, len(ids)), self.key_block, self.mlp_chunk)
        return select_tokens(logits, self.k, self.pool_kernel, candidates)


@dataclasses.dataclass
class GemFilter(GemFilterSettings, Compressor):
    """Keep the ``k`` source tokens that the filter layer's last query attends to most, as exact
    source spans in their original order. The filter pass reads the prompt that ragpress generators
    build (:meth:`Generator.messages`), so the question sits at the end where the paper puts it."""

    tokenizer: str = dataclasses.field(init=False, default="")

    def __post_init__(self):
        self.check_settings()
        self.tokenizer = self.model

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        lm = self.language_model()
        layout = PromptLayout.build(lm, Generator().messages(Context(query=query, pieces=chunks)), chunks)
        sources = layout.sources
        before = int(sources.sum())
        if self.k >= before:  # nothing to cut: hand the chunks on whole
            return Context(query=query, pieces=chunks, tokens_before=before, tokens_after=before, metadata={"method": "gemfilter"})
        selected, scores = self.select(lm, layout.ids, sources)
        return Context(
            query=query,
            pieces=layout.spans(selected, scores),
            tokens_before=before,
            tokens_after=len(selected),
            metadata={"method": "gemfilter", "prompt_tokens": len(layout.ids)},
        )
