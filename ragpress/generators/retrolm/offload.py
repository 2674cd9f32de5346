"""RetroLM's KV store moved into host memory while the prefill still runs.

Copied after the forward, the store cost 4.4 s at 64K tokens and 8.4 s at 128K on an H200 (an 8B
model: 1.7-2.2x of the one-shot prefill), nearly all of it the allocation and pinning of fresh host
memory. But each decoder layer's KV is final once that layer has run in the last prefill forward, so
a forward hook on the layer copies it into pinned host buffers on a side stream that waits only for that
layer's kernels: the copies overlap the later layers' compute. Allocated in the hooks (host work while
the GPU computed the layers already queued), the buffers still cost 64K tokens 1.33x of the one-shot
prefill: pinning fresh memory ran at ~1.9 GB/s, slower than the layers. So the buffers of every layer
are allocated from the forward's start by a few threads (pinning is page-touching work that spreads
over cores), the first layers' first. The store holds the same values as a copy made afterwards."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch


class LayerOffload:
    """Forward hooks on every decoder layer of ``model`` that copy the layer's entry of ``cache`` into
    pinned host memory on a side stream as soon as the layer has run. Register it around the last
    prefill forward only (earlier chunks' entries still grow), as a context manager that removes them;
    :meth:`take` waits for the copies. ``tokens`` is the context's length once that forward has run
    (the shape of each layer's keys and values, ``[1, kv_heads, tokens, head_dim]``, whose pinned
    buffers ``threads`` threads allocate ahead)."""

    def __init__(self, model: Any, cache: Any, device: torch.device, tokens: int, threads: int = 8):
        self.cache, self.stream = cache, torch.cuda.Stream(device)
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        layers = model.get_decoder().layers
        config = model.config.get_text_config(decoder=True)
        width = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        shape, dtype = (1, config.num_key_value_heads, tokens, width), model.dtype
        pool = ThreadPoolExecutor(threads, thread_name_prefix="retrolm-pin")
        self.buffers: list[Future] = [pool.submit(pinned_pair, shape, dtype) for _ in layers]
        pool.shutdown(wait=False)  # the threads end once every buffer is allocated
        self.handles = [layer.register_forward_hook(self._copier(index)) for index, layer in enumerate(layers)]

    def _copier(self, index: int):
        def copy(module, args, output) -> None:
            layer = self.cache.layers[index]
            ready = torch.cuda.current_stream(layer.keys.device).record_event()
            pinned = self.buffers[index].result()
            if any(p.shape != t.shape or p.dtype != t.dtype for p, t in zip(pinned, (layer.keys, layer.values))):
                pinned = pinned_pair(layer.keys.shape, layer.keys.dtype)  # a model whose cache is not [1, kv_heads, n, head_dim]
            with torch.cuda.stream(self.stream):
                self.stream.wait_event(ready)
                self.keys[index] = pinned[0].copy_(layer.keys, non_blocking=True)
                self.values[index] = pinned[1].copy_(layer.values, non_blocking=True)
        return copy

    def __enter__(self) -> LayerOffload:
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()

    def take(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The per-layer host keys and values, once every copy has finished."""
        self.stream.synchronize()
        if len(self.keys) != len(self.cache.layers):
            raise RuntimeError(f"RetroLM offloaded {len(self.keys)} of {len(self.cache.layers)} cache layers; the decoder's layers "
                               "and the cache's do not line up (a model with shared or skipped KV layers needs offload=False).")
        return [self.keys[i] for i in range(len(self.keys))], [self.values[i] for i in range(len(self.values))]


def pinned_pair(shape: tuple[int, ...], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys' and values' pinned host buffers of one layer."""
    return torch.empty(shape, dtype=dtype, pin_memory=True), torch.empty(shape, dtype=dtype, pin_memory=True)
