"""The fast decode path: generation over a preallocated (static) KV cache whose decoding steps
transformers compiles with CUDA graphs (``torch.compile(mode="reduce-overhead")``), so a step costs
about the bytes it reads (weights + attended KV) rather than Python and kernel-launch overhead.

How it fits transformers' ``generate``: the prompt but its last token is prefilled eagerly on a
growing :class:`~transformers.DynamicCache` (a causal kernel, as the eager path does: time to first
token stays the same), copied layer by layer into a :class:`~transformers.StaticCache`, and
``generate`` continues from it: its one-token "prefill" runs eagerly, every later step through the
compiled call (transformers compiles decoding steps on CUDA whenever the cache is static). The
static length is rounded up to a bucket (:func:`static_length`) so prompts of nearby lengths reuse
one compiled graph instead of compiling their own. Attention of a decoding step goes through
:func:`gqa_sdpa`: transformers' compiled sdpa path repeats every KV head for each query head over the
whole static buffer (4x the KV bytes written and read again, measured 60 ms a step at 128K), while
SDPA's own grouped-query mode reads the KV once.

``decode`` chooses the path everywhere generation happens (:class:`~ragpress.core.lm.CausalLM` and
the generators that call it): ``"auto"`` is static on CUDA and eager elsewhere (on the CPU a static
cache saves nothing and compiling costs seconds), ``"eager"`` forces transformers' dynamic cache
(debugging, or a model whose cache is not a plain full-attention one), ``"static"`` forces the
static cache on any device (uncompiled off CUDA: the same tokens, which the tests check).
"""

from __future__ import annotations

from typing import Any

import torch

from ragpress.core.kv_cache import cache_argument

DECODE_MODES = ("auto", "eager", "static")


def check_decode(decode: str) -> str:
    """``decode`` if it names a decode path, else a ValueError that lists them."""
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {DECODE_MODES}, got {decode!r}: 'auto' is static on CUDA, eager elsewhere.")
    return decode


def uses_static(decode: str, device: torch.device) -> bool:
    """Whether ``decode`` takes the static path on ``device``."""
    return check_decode(decode) == "static" or (decode == "auto" and device.type == "cuda")


def gqa_sdpa(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: Any, **kwargs: Any):
    """transformers' sdpa attention, except that one query token over a masked cache (a decoding step
    on a static cache) runs SDPA with ``enable_gqa`` instead of repeating the KV heads."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1 or not isinstance(attention_mask, torch.Tensor) or kwargs.get("output_attentions"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, scale=kwargs.get("scaling"), enable_gqa=True
    )
    return out.transpose(1, 2).contiguous(), None


def use_gqa_sdpa(model: Any) -> None:
    """Route a model that runs transformers' sdpa attention through :func:`gqa_sdpa` (the same
    arithmetic; other implementations are left as they are)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    if model.config._attn_implementation == "sdpa":
        AttentionInterface.register("gqa_sdpa", gqa_sdpa)
        AttentionMaskInterface.register("gqa_sdpa", ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])  # the same masks as sdpa
        model.set_attn_implementation("gqa_sdpa")


def static_length(tokens: int) -> int:
    """``tokens`` rounded up to a multiple of an eighth of the power of two below it (at least 256):
    few distinct cache shapes (one compile each), at most 1/8 more KV to read than needed."""
    grain = max(256, 1 << max(tokens.bit_length() - 4, 0))
    return -(-tokens // grain) * grain


@torch.inference_mode()
def prefilled_static_cache(model: Any, prompt: torch.Tensor, mask: torch.Tensor, length: int):
    """A :class:`~transformers.StaticCache` of ``length`` positions holding the KV of ``prompt``
    (token ids ``[b, n]`` or input embeddings ``[b, n, hidden]``, attention ``mask`` ``[b, n]``,
    left-padded), prefilled eagerly; each dynamic layer is freed once copied, so the KV is held
    twice for one layer at most. Positions count the mask's ones, as ``generate`` counts them."""
    from transformers import DynamicCache, StaticCache

    cache = StaticCache(config=model.config.get_text_config(decoder=True), max_cache_len=length)
    if prompt.shape[1] == 0:
        return cache
    given = {"inputs_embeds" if prompt.is_floating_point() else "input_ids": prompt}
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    dynamic = DynamicCache()
    model.get_decoder()(**given, attention_mask=mask, position_ids=positions, use_cache=True, **cache_argument(model.get_decoder(), dynamic))
    where = {"cache_position": torch.arange(prompt.shape[1], device=prompt.device)}  # older transformers place by it
    for index, layer in enumerate(dynamic.layers):
        cache.update(layer.keys, layer.values, index, where)
        layer.keys = layer.values = None
    return cache


@torch.inference_mode()
def static_generate(model: Any, prompt: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, **kwargs: Any) -> torch.Tensor:
    """``model.generate`` on ``prompt`` (token ids ``[b, n]`` or input embeddings ``[b, n, hidden]``)
    over a static cache prefilled with all but its last token; returns what ``generate`` returns
    (for token ids the prompt and new tokens, for input embeddings the new tokens)."""
    length = static_length(prompt.shape[1] + max_new_tokens)
    cache = prefilled_static_cache(model, prompt[:, :-1], mask[:, :-1], length)
    return continue_generate(model, prompt, mask, cache, max_new_tokens, **kwargs)


@torch.inference_mode()
def continue_generate(model: Any, prompt: torch.Tensor, mask: torch.Tensor, cache: Any, max_new_tokens: int, **kwargs: Any) -> torch.Tensor:
    """``model.generate`` on ``prompt`` after ``cache`` holds the KV of all its tokens but the last:
    a static cache decodes through transformers' compiled call on CUDA (attention by :func:`gqa_sdpa`),
    a dynamic one eagerly."""
    from transformers import DynamicCache

    if not isinstance(cache, DynamicCache):
        use_gqa_sdpa(model)
    given = {"inputs_embeds" if prompt.is_floating_point() else "input_ids": prompt}
    return model.generate(**given, attention_mask=mask, max_new_tokens=max_new_tokens, **cache_argument(model, cache), **kwargs)
