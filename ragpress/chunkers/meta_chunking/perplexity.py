"""Meta-Chunking's perplexity scoring (Zhao et al., arXiv:2410.12788, §3 "Perplexity Chunking" and
"KV caching"): each sentence's mean token NLL given all the text before it, from one causal pass in
windows that reuse the KV cache. Steps 2-3 of :mod:`ragpress.chunkers.meta_chunking.stage`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ragpress.core.kv_cache import cache_argument, returned_cache
from ragpress.core.lm import CausalLM
from ragpress.core.text import tokenizable


def _is_rotary(config) -> bool:
    return any(getattr(config, name, None) is not None for name in ("rope_parameters", "rope_theta", "rotary_dim"))


def _drop_oldest(cache, keep: int) -> None:
    """Keep only the ``keep`` most recent tokens in every full-attention layer of a DynamicCache
    (sliding-window layers bound themselves)."""
    for layer in cache.layers:
        if not getattr(layer, "is_sliding", False) and layer.keys is not None and layer.keys.shape[-2] > keep:
            layer.keys, layer.values = layer.keys[..., -keep:, :], layer.values[..., -keep:, :]


@torch.inference_mode()
def token_nll(lm: CausalLM, ids: Sequence[int], window: int, max_context: int) -> torch.Tensor:
    """``-log p(ids[t] | earlier ids)`` for ``t = 1 .. len(ids) - 1`` from one causal pass in windows of
    ``window`` tokens that reuse the KV cache; each window attends to at most ``max_context`` tokens
    (cache plus itself), the oldest dropped first, every token kept at its true position."""
    if window >= max_context:
        raise ValueError(f"window ({window}) must be smaller than max_context ({max_context}).")
    if len(ids) > lm.max_length and not _is_rotary(lm.model.config):
        raise ValueError(
            f"{lm.name} has learned absolute positions up to {lm.max_length}; a text of {len(ids)} tokens "
            "cannot be scored with a sliding cache. Use a RoPE model (e.g. 'smollm2-135m') or a shorter text."
        )
    cache, last_logits, out = None, None, []
    starts = range(0, len(ids), window)
    for start in tqdm(starts, desc="perplexity windows", disable=len(starts) < 4, leave=False):
        piece = torch.tensor([list(ids[start : start + window])], device=lm.device)
        if cache is not None:
            _drop_oldest(cache, max_context - piece.shape[1])
        positions = torch.arange(start, start + piece.shape[1], device=lm.device)[None]
        result = lm.model(input_ids=piece, position_ids=positions, use_cache=True, **cache_argument(lm.model, cache))
        logits = result.logits[0].float()
        if last_logits is not None:  # this window's first token, predicted by the previous window
            out.append(torch.nn.functional.cross_entropy(last_logits[None], piece[0, :1], reduction="none").cpu())
        out.append(torch.nn.functional.cross_entropy(logits[:-1], piece[0, 1:], reduction="none").cpu())
        cache, last_logits = returned_cache(result), logits[-1]
    return torch.cat(out) if out else torch.zeros(0)


def sentence_nll(
    lm: CausalLM, text: str, spans: Sequence[tuple[int, int]], window: int = 4096, max_context: int = 9000
) -> list[float]:
    """Mean token NLL (log-perplexity, nats) of each sentence span of ``text`` given the text before
    it, all from one windowed KV-cached pass (:func:`token_nll`). Each sentence is tokenised with
    the whitespace before it so the model reads the original text. NaN for a first sentence of one
    token (nothing of it can be scored)."""
    if not spans:
        raise ValueError("No sentences to score: the text is empty or only whitespace.")
    text = tokenizable(text)
    cuts = [0] + [end for _, end in spans[:-1]]
    pieces = [text[cut:end] for cut, (_, end) in zip(cuts, spans)]
    token_lists = lm.tokenizer(pieces, add_special_tokens=False)["input_ids"]
    ids = [token for tokens in token_lists for token in tokens]
    context = min(max_context, lm.max_length)
    nll = token_nll(lm, ids, min(window, context // 2), context)
    values, offset = [], 0
    for tokens in token_lists:
        # token t is predicted by nll[t - 1]; the very first token has no prediction
        scored = nll[max(offset - 1, 0) : offset + len(tokens) - 1]
        values.append(scored.mean().item() if len(scored) else math.nan)
        offset += len(tokens)
    return values
