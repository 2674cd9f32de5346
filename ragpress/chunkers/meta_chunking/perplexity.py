"""Meta-Chunking's perplexity scoring (Zhao et al., arXiv:2410.12788, §3 "Perplexity Chunking" and
"KV caching"): each sentence's mean token NLL given all the text before it, from one causal pass in
windows that reuse the KV cache. Steps 2-3 of :mod:`ragpress.chunkers.meta_chunking.stage`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ragpress.core.device import length_batches, padded_attention, padding_allowance
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


def token_nll(lm: CausalLM, ids: Sequence[int], window: int, max_context: int) -> torch.Tensor:
    """``-log p(ids[t] | earlier ids)`` for ``t = 1 .. len(ids) - 1`` from one causal pass in windows of
    ``window`` tokens that reuse the KV cache; each window attends to at most ``max_context`` tokens
    (cache plus itself), the oldest dropped first, every token kept at its true position."""
    return token_nll_batch(lm, [ids], window, max_context, window)[0]


@torch.inference_mode()
def token_nll_batch(
    lm: CausalLM, id_lists: Sequence[Sequence[int]], window: int, max_context: int, tokens: int, pairs: int | None = None
) -> list[torch.Tensor]:
    """:func:`token_nll` of many texts, batched across texts: texts sorted by length go in groups of
    at most ``tokens`` tokens per forward (rows times the longest first window) and ``pairs``
    query-key pairs (rows times window times the context a window attends to), split where padding
    would cost more than a forward (:func:`~ragpress.core.device.padding_allowance`), and each group
    moves window by window, its rows reusing their own KV caches, until its last text ends."""
    if window >= max_context:
        raise ValueError(f"window ({window}) must be smaller than max_context ({max_context}).")
    longest = max((len(ids) for ids in id_lists), default=0)
    if longest > lm.max_length and not _is_rotary(lm.model.config):
        raise ValueError(
            f"{lm.name} has learned absolute positions up to {lm.max_length}; a text of {longest} tokens "
            "cannot be scored with a sliding cache. Use a RoPE model (e.g. 'smollm2-135m') or a shorter text."
        )
    out: list[torch.Tensor] = [torch.zeros(0)] * len(id_lists)
    groups = length_batches(
        [min(len(ids), window) for ids in id_lists], tokens, pairs=pairs, reach=[min(len(ids), max_context) for ids in id_lists],
        padding=padding_allowance(lm.device, lm.model.config, lm.model.dtype),
    )
    for group in tqdm(groups, desc="perplexity batches", disable=len(groups) < 4, leave=False):
        for i, nll in zip(group, _group_nll(lm, [id_lists[i] for i in group], window, max_context)):
            out[i] = nll
    return out


def _group_nll(lm: CausalLM, texts: list[Sequence[int]], window: int, max_context: int) -> list[torch.Tensor]:
    """One batch of texts, window by window. Only texts whose previous window was full go on, so the
    rows of a later window share one cache length; in a text's last window its shorter piece is
    right-padded. When the cache must shrink, it keeps what the row with the shortest piece would
    keep alone, and each row with a longer piece masks the oldest entries it would have dropped."""
    pad = lm.tokenizer.pad_token_id
    rows, cache, last, start = list(range(len(texts))), None, None, 0
    parts: list[list[torch.Tensor]] = [[] for _ in texts]
    while rows:
        pieces = [list(texts[t][start : start + window]) for t in rows]
        width, shortest = max(map(len, pieces)), min(map(len, pieces))
        past = 0
        if cache is not None:
            _drop_oldest(cache, max_context - shortest)
            past = cache.get_seq_length()
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.ones((len(rows), past + width), dtype=torch.long)
        for r, piece in enumerate(pieces):
            ids[r, : len(piece)] = torch.tensor(piece)
            mask[r, past + len(piece) :] = 0
            mask[r, : max(0, past - (max_context - len(piece)))] = 0  # what this row alone would have dropped
        ids, mask = ids.to(lm.device), mask.to(lm.device)
        positions = torch.arange(start, start + width, device=lm.device).expand(len(rows), -1)
        with padded_attention(lm.device):
            result = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **cache_argument(lm.model, cache))
        logits = result.logits
        for r, piece in enumerate(pieces):
            n = len(piece)
            scores = logits[r, :n].float()
            if last is not None:  # this window's first token, predicted by the previous window
                scores = torch.cat([last[r : r + 1], scores])
            parts[rows[r]].append(torch.nn.functional.cross_entropy(scores[:-1], ids[r, :n] if last is not None else ids[r, 1:n], reduction="none"))
        going = [r for r, piece in enumerate(pieces) if len(piece) == window and start + window < len(texts[rows[r]])]
        cache, start = returned_cache(result), start + window
        if going:
            keep = torch.tensor(going, device=lm.device)
            _select_rows(cache, keep)
            last = logits[keep, -1].float()
        rows = [rows[r] for r in going]
    flat = torch.cat([torch.cat(p) for p in parts]).cpu()  # one copy to the host for the whole batch
    return list(flat.split([sum(len(x) for x in p) for p in parts]))


def _select_rows(cache, rows: torch.Tensor) -> None:
    """Keep only the batch rows ``rows`` of every layer of a DynamicCache."""
    for layer in cache.layers:
        if layer.keys is not None:
            layer.keys, layer.values = layer.keys[rows], layer.values[rows]


def sentence_nll(
    lm: CausalLM, text: str, spans: Sequence[tuple[int, int]], window: int = 4096, max_context: int = 9000
) -> list[float]:
    """Mean token NLL (log-perplexity, nats) of each sentence span of ``text`` given the text before
    it, all from one windowed KV-cached pass (:func:`token_nll`). Each sentence is tokenised with
    the whitespace before it so the model reads the original text. NaN for a first sentence of one
    token (nothing of it can be scored)."""
    return sentence_nll_batch(lm, [text], [spans], window, max_context, window)[0]


def sentence_nll_batch(
    lm: CausalLM, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], window: int = 4096,
    max_context: int = 9000, tokens: int = 4096, pairs: int | None = None,
) -> list[list[float]]:
    """:func:`sentence_nll` of many texts, their windows batched across texts up to ``tokens`` tokens
    per forward (:func:`token_nll_batch`); each text's values equal its own :func:`sentence_nll`."""
    if any(not s for s in spans):
        raise ValueError("No sentences to score: the text is empty or only whitespace.")
    token_lists = []
    for text, sentences in zip(texts, spans):
        text = tokenizable(text)
        cuts = [0] + [end for _, end in sentences[:-1]]
        token_lists.append(lm.tokenizer([text[cut:end] for cut, (_, end) in zip(cuts, sentences)], add_special_tokens=False)["input_ids"])
    context = min(max_context, lm.max_length)
    ids = [[token for tokens in sentence_tokens for token in tokens] for sentence_tokens in token_lists]
    nlls = token_nll_batch(lm, ids, min(window, context // 2), context, tokens, pairs)
    return [_sentence_means(nll.tolist(), sentence_tokens) for nll, sentence_tokens in zip(nlls, token_lists)]


def _sentence_means(nll: list[float], token_lists: list[list[int]]) -> list[float]:
    values, offset = [], 0
    for tokens in token_lists:
        # token t is predicted by nll[t - 1]; the very first token has no prediction
        scored = nll[max(offset - 1, 0) : offset + len(tokens) - 1]
        values.append(sum(scored) / len(scored) if scored else math.nan)
        offset += len(tokens)
    return values
