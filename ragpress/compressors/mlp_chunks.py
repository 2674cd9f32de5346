"""Run a decoder's MLPs over the sequence in token chunks, to cap their activation memory.

A decoder MLP maps each token on its own (``down(act(gate(x)) * up(x))`` for Llama-style models), so
running it on chunks of tokens does the same arithmetic per token and gives the same output up to
floating-point rounding, while its intermediates (``intermediate_size`` wide, e.g. 14336 for
LLaMA-3.1-8B: 1.75 GiB per tensor at 64K bf16 tokens) exist for one chunk at a time. The
GemFilter first pass uses it (:mod:`ragpress.compressors.gemfilter`); the GPU benchmark applies
the same context manager to the full prefill it compares against, so both sides get the saving.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


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
