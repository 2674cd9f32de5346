"""RetroLM's steps 1-2 (Luo et al., arXiv:2502.11444, Sec. 3; see :mod:`ragpress.generators.retrolm.paging`
for the method and its deviations): the long context encoded once into a KV cache by a chunked prefill,
cut into pages, each summarised by the mean of its keys.

A chunk attends to the cache before it and causally to itself: the chunk's queries are the last rows
of a causal pattern over ``[cache + chunk]`` (bottom-right alignment). :func:`chunk_causal_sdpa` asks
SDPA for exactly that (``causal_lower_right``: the flash kernel on CUDA) instead of the masked kernel
that transformers' sdpa path runs over a materialised ``[chunk, cache + chunk]`` mask."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from tqdm import tqdm
from transformers import DynamicCache

from ragpress.core.kv_cache import cache_argument
from ragpress.core.lm import CausalLM


@torch.inference_mode()
def encode_pages(lm: CausalLM, ids: torch.Tensor, page_size: int, offload: bool,
                 prefill_tokens: int = 8192) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """Steps 1-2 on token ids ``[n]``: a chunked prefill on a growing :class:`~transformers.DynamicCache`,
    ``prefill_tokens`` tokens (whole pages) a forward, every chunk attending to all earlier tokens; then
    the pages and their summaries are cut from the cache. Returns per-layer keys and values (on CPU if
    ``offload``) and the ``[layers, kv_heads, pages, head_dim]`` float32 mean-key page summaries. The
    chunk size changes memory and speed, not the cache (one page a forward is the same arithmetic)."""
    cache, n = DynamicCache(), len(ids)
    step = max(page_size, prefill_tokens // page_size * page_size)
    decoder = lm.model.get_decoder()
    with causal_chunks(lm.model):
        for start in tqdm(range(0, n, step), desc="RetroLM prefill", disable=n < 16 * step):
            decoder(input_ids=ids[None, start : start + step].to(lm.device), use_cache=True, **cache_argument(decoder, cache))
    summaries = torch.stack([page_means(layer.keys[0], page_size) for layer in cache.layers])
    store = "cpu" if offload else lm.device
    keys = [layer.keys.to(store) for layer in cache.layers]
    values = [layer.values.to(store) for layer in cache.layers]
    return keys, values, summaries


def page_means(keys: torch.Tensor, page_size: int) -> torch.Tensor:
    """``[heads, pages, head_dim]`` float32 means of ``keys`` ``[heads, n, head_dim]`` over each page of
    ``page_size`` tokens (the last page may be shorter)."""
    whole = keys.shape[1] // page_size * page_size
    means = keys[:, :whole].float().unflatten(1, (-1, page_size)).mean(2)
    if whole < keys.shape[1]:
        means = torch.cat([means, keys[:, whole:].float().mean(1, keepdim=True)], dim=1)
    return means


def chunk_causal_sdpa(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: Any,
                      scaling: float | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention of one unpadded prefill chunk over ``[cache + chunk]``: causal, the chunk's queries
    aligned to the bottom right, so no mask is built or read."""
    from torch.nn.attention.bias import causal_lower_right

    rows, columns = query.shape[2], key.shape[2]
    bias = causal_lower_right(rows, columns) if 1 < rows < columns else None
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=bias, is_causal=bias is None and rows > 1, scale=scaling, enable_gqa=query.shape[1] != key.shape[1]
    )
    return out.transpose(1, 2).contiguous(), None


@contextlib.contextmanager
def causal_chunks(model: Any) -> Iterator[None]:
    """Inside the block, a model on transformers' sdpa attention runs :func:`chunk_causal_sdpa`
    (a name with no mask function, so transformers builds no mask); other attention stays as it is."""
    from transformers import AttentionInterface

    previous = model.config._attn_implementation
    if previous not in ("sdpa", "gqa_sdpa"):
        yield
        return
    AttentionInterface.register("chunk_causal_sdpa", chunk_causal_sdpa)
    model.set_attn_implementation("chunk_causal_sdpa")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)
