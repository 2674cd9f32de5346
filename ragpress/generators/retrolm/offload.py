"""RetroLM's KV store moved into host memory while the prefill still runs.

Copied after the forward, the store cost 4.4 s at 64K tokens and 8.4 s at 128K on an H200 (an 8B
model: 1.7-2.2x of the one-shot prefill), nearly all of it the allocation and pinning of fresh host
memory. But each decoder layer's KV is final once that layer has run in the last prefill forward, so
a forward hook on the layer copies it into pinned host buffers on a side stream that waits only for that
layer's kernels: the copies overlap the later layers' compute. The store holds the same values as a
copy made afterwards.

Pinning fresh memory is the slow part: cudaHostAlloc ran at ~2.1 GiB/s on an H200 machine (3.76 s
for a 64K-token store), the same from 4-16 threads (the driver serialises it), slower than the layers
(64K: 1.33x of the one-shot prefill). PyTorch's other way to pin (``pinned_use_cuda_host_register``:
malloc, pages touched by ``pinned_num_register_threads`` threads, then cudaHostRegister) took 0.40 s
with 8 threads. :func:`fast_pinning` switches it on for the process unless the user configured pinned
memory already (``PYTORCH_CUDA_ALLOC_CONF`` / ``PYTORCH_ALLOC_CONF``); it changes how pinned blocks
are made, not what they hold."""

from __future__ import annotations

import os
from typing import Any

import torch


class LayerOffload:
    """Forward hooks on every decoder layer of ``model`` that copy the layer's entry of ``cache`` into
    pinned host memory on a side stream as soon as the layer has run. Register it around the last
    prefill forward only (earlier chunks' entries still grow), as a context manager that removes them;
    :meth:`take` waits for the copies."""

    def __init__(self, model: Any, cache: Any, device: torch.device):
        fast_pinning()
        self.cache, self.stream = cache, torch.cuda.Stream(device)
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        layers = model.get_decoder().layers
        self.handles = [layer.register_forward_hook(self._copier(index)) for index, layer in enumerate(layers)]

    def _copier(self, index: int):
        def copy(module, args, output) -> None:
            layer = self.cache.layers[index]
            ready = torch.cuda.current_stream(layer.keys.device).record_event()
            pinned = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in (layer.keys, layer.values)]
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


def fast_pinning(threads: int = 8) -> None:
    """Pinned host memory made by malloc, ``threads`` threads touching its pages, and cudaHostRegister
    (PyTorch's ``pinned_use_cuda_host_register``), for the rest of the process; nothing if the user
    has configured pinned memory through the environment."""
    configured = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "") + os.environ.get("PYTORCH_ALLOC_CONF", "")
    if "pinned" not in configured:  # torch 2.9+ names the setter per accelerator; the CUDA one before
        setter = getattr(torch._C, "_accelerator_setAllocatorSettings", None) or torch.cuda.memory._set_allocator_settings
        setter(f"pinned_use_cuda_host_register:True,pinned_num_register_threads:{threads}")
