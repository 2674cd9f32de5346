"""Attention as the methods read it, shared by GemFilter (tokens the filter layer attends to) and
RetroLM (pages the query attends to): per-head query/key projections with RoPE as the model applies
it, the attention logits of the last prompt rows at one layer without running the layers above it or
materialising an ``n x n`` matrix, and decoder MLPs run in token chunks to cap activation memory.

A decoder MLP maps each token on its own (``down(act(gate(x)) * up(x))`` for Llama-style models), so
running it on chunks of tokens does the same arithmetic per token and gives the same output up to
floating-point rounding, while its intermediates (``intermediate_size`` wide, e.g. 14336 for
LLaMA-3.1-8B: 1.75 GiB per tensor at 64K bf16 tokens) exist for one chunk at a time.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import torch


def rotary(attn: Any) -> Callable:
    """The ``apply_rotary_pos_emb`` of the module that defines ``attn`` (its model family's RoPE)."""
    return importlib.import_module(type(attn).__module__).apply_rotary_pos_emb


class _ReachedLayer(Exception):
    """Stops a forward pass at a chosen layer (it carries the layer's inputs)."""

    def __init__(self, hidden: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor]):
        self.hidden, self.position_embeddings = hidden, position_embeddings


def project_heads(attn: Any, proj: str, norm: str, x: torch.Tensor) -> torch.Tensor:
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
    prompt tokens at decoder layer ``layer`` (GemFilter, arXiv:2409.17422, Sec. 3.2, step 1); ``softmax``
    over the last axis gives the model's attention rows. The layers above ``layer`` never run. Future keys of earlier rows are ``-inf``. Layers before ``layer`` run
    their MLP on ``mlp_chunk`` tokens at a time (``None``: all at once)."""
    decoder = model.get_decoder()
    block = decoder.layers[layer]

    def stop(module, args, kwargs):
        raise _ReachedLayer(args[0] if args else kwargs["hidden_states"], kwargs["position_embeddings"])

    handle = block.register_forward_pre_hook(stop, with_kwargs=True)
    try:
        with chunked_mlp(model, mlp_chunk, range(layer)):
            decoder(input_ids=input_ids.to(model.device), use_cache=False)
        raise RuntimeError(f"Layer {layer} of {type(model).__name__} was never called; reading its attention needs a standard decoder stack.")
    except _ReachedLayer as reached:
        hidden, (cos, sin) = reached.hidden, reached.position_embeddings
    finally:
        handle.remove()

    attn, n = block.self_attn, hidden.shape[1]
    rope = rotary(attn)
    groups = attn.num_key_value_groups
    queries = project_heads(attn, "q_proj", "q_norm", block.input_layernorm(hidden[:, -query_rows:]))
    queries = rope(queries, queries, cos[:, -query_rows:], sin[:, -query_rows:])[0]
    # Query head h reads KV head h // groups (repeat_kv); grouping the queries avoids copying keys.
    queries = queries.reshape(1, -1, groups * query_rows, attn.head_dim).float()
    logits = torch.empty(queries.shape[1], groups * query_rows, n, device=hidden.device)
    for start in range(0, n, key_block):
        stop_at = min(start + key_block, n)
        keys = project_heads(attn, "k_proj", "k_norm", block.input_layernorm(hidden[:, start:stop_at]))
        keys = rope(keys, keys, cos[:, start:stop_at], sin[:, start:stop_at])[1]
        logits[:, :, start:stop_at] = (queries @ keys.float().transpose(-1, -2))[0] * attn.scaling
    logits = logits.view(-1, query_rows, n)
    softcap = getattr(attn, "attn_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    future = torch.arange(n, device=logits.device)[None, :] > torch.arange(n - query_rows, n, device=logits.device)[:, None]
    return logits.masked_fill(future, float("-inf"))


@contextlib.contextmanager
def chunked_mlp(model: Any, chunk_tokens: int | None, layers: range | None = None) -> Iterator[None]:
    """Inside the block, decoder layers ``layers`` (all by default) run their ``mlp`` on at most
    ``chunk_tokens`` tokens at a time; ``None`` leaves the model unchanged. The wrappers are removed
    on exit, also after an exception."""
    if chunk_tokens is None:
        yield
        return
    if not isinstance(chunk_tokens, int) or chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be a positive int or None, got {chunk_tokens!r}.")
    blocks = model.get_decoder().layers
    chosen = [blocks[i] for i in (layers if layers is not None else range(len(blocks)))]
    missing = [type(b).__name__ for b in chosen if not isinstance(getattr(b, "mlp", None), torch.nn.Module)]
    if missing:
        raise TypeError(f"{missing[0]} has no `mlp` module to run in chunks; pass chunk_tokens=None (mlp_chunk=None) for this model.")
    saved = []
    for block in chosen:
        mlp = block.mlp
        saved.append((mlp, mlp.__dict__.get("forward")))  # an instance-level forward (e.g. accelerate's hook) is kept
        mlp.forward = _chunked(mlp.forward, chunk_tokens, type(mlp).__name__)
    try:
        yield
    finally:
        for mlp, previous in saved:
            if previous is None:
                del mlp.forward
            else:
                mlp.forward = previous


def _chunked(forward, chunk_tokens: int, name: str):
    def run(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        if n <= chunk_tokens:
            return forward(x)
        out = None
        for start in range(0, n, chunk_tokens):
            part = forward(x[..., start : start + chunk_tokens, :])
            if not isinstance(part, torch.Tensor) or part.shape[:-1] != x[..., start : start + chunk_tokens, :].shape[:-1]:
                raise TypeError(f"{name} does not return one tensor per token; pass chunk_tokens=None (mlp_chunk=None).")
            if out is None:  # written in place: no list of parts and no second copy from torch.cat
                out = part.new_empty(*x.shape[:-1], part.shape[-1])
            out[..., start : start + chunk_tokens, :] = part
        return out

    return run
