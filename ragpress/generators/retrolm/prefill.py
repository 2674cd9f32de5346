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

from ragpress.core.device import free_bytes
from ragpress.core.kv_cache import cache_argument
from ragpress.core.lm import CausalLM
from ragpress.generators.retrolm.offload import LayerOffload


@torch.inference_mode()
def encode_pages(lm: CausalLM, ids: torch.Tensor, page_size: int, offload: bool,
                 prefill_tokens: int | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """Steps 1-2 on token ids ``[n]``: a chunked prefill on a growing :class:`~transformers.DynamicCache`,
    ``prefill_tokens`` tokens (whole pages) a forward, every chunk attending to all earlier tokens; then
    the pages and their summaries are cut from the cache. Returns per-layer keys and values (in host
    memory if ``offload``: from a GPU, pinned and copied during the last forward, layer by layer,
    :class:`~ragpress.generators.retrolm.offload.LayerOffload`, so later page copies can be asynchronous)
    and the ``[layers, kv_heads, pages, head_dim]`` float32 mean-key page summaries. ``None`` takes
    chunks as large as free memory allows (:func:`prefill_chunk`). The chunk size changes memory and
    speed, not the cache (one page a forward is the same arithmetic)."""
    cache, n = DynamicCache(), len(ids)
    step = prefill_chunk(lm.model, n, page_size, lm.device) if prefill_tokens is None else max(page_size, prefill_tokens // page_size * page_size)
    decoder = lm.model.get_decoder()
    starts = range(0, n, step)
    overlap = offload and lm.device.type == "cuda"
    with causal_chunks(lm.model):
        for start in tqdm(starts, desc="RetroLM prefill", disable=n < 16 * step):
            offloader = LayerOffload(lm.model, cache, lm.device) if overlap and start == starts[-1] else contextlib.nullcontext()
            with offloader:
                decoder(input_ids=ids[None, start : start + step].to(lm.device), use_cache=True, **cache_argument(decoder, cache))
    summaries = torch.stack([page_means(layer.keys[0], page_size) for layer in cache.layers])
    if overlap:
        keys, values = offloader.take()
    elif offload:
        keys, values = [layer.keys.cpu() for layer in cache.layers], [layer.values.cpu() for layer in cache.layers]
    else:
        keys, values = [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers]
    return keys, values, summaries


# Bytes held per token of one prefill forward besides the cache, in units of the model's dtype: within
# a decoder layer at most ~3 MLP-wide tensors (gate, up, their product) and ~6 hidden-wide ones (the
# residual, the normed input, attention's q, output and its transposed copy), rounded up.
_ACTIVATIONS = {"intermediate_size": 4, "hidden_size": 8}


def prefill_chunk(model: Any, n: int, page_size: int, device: torch.device, spare: float = 0.2) -> int:
    """Tokens per prefill forward, whole pages: on CUDA as many as the free memory holds once the whole
    context's KV cache is set aside (``spare`` of it kept free for the allocator and the cache's
    growth), so a 64K-128K context of an 8B model on an H200 is one forward; 8192 elsewhere (on the CPU
    a larger chunk saves nothing: the forward is bound by arithmetic, not launches)."""
    if device.type != "cuda":
        tokens = 8192
    else:
        config = model.config.get_text_config(decoder=True)
        width = config.hidden_size // config.num_attention_heads
        size = model.dtype.itemsize
        cache = n * config.num_hidden_layers * 2 * config.num_key_value_heads * (getattr(config, "head_dim", None) or width) * size
        per_token = size * sum(factor * getattr(config, name) for name, factor in _ACTIVATIONS.items())
        tokens = int(((1 - spare) * free_bytes(device) - cache) // per_token)
    return max(page_size, min(tokens, n + page_size - 1) // page_size * page_size)


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
