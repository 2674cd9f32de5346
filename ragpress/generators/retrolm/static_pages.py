"""RetroLM's step 4 on the fast decode path (:mod:`ragpress.core.decode`): the retrieved pages, the
query and the new tokens live in one preallocated :class:`~transformers.StaticCache`, so every
decoding step has the same shapes and addresses and can run as one compiled CUDA graph.

Slots ``[0, kept)`` hold the selected pages in context order (keys stored rotated at their original
positions, as in :meth:`PagedContext._cache`); the query and the generated tokens follow. A page
re-selection keeps the number of pages (the fixed pages plus ``pages_kept``), so it rewrites the
first ``kept`` slots in place: the pages that stay move on the device, only the new ones are copied
from the store, and the slots after them stay as they are: exactly what the eager loop's rebuilt
cache holds. Greedy steps are queued one ahead of the host (:func:`queue_next`). Attention reads the whole buffer under the
mask, which only lets a token see the slots written before it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ragpress.core.decode import static_length, use_gqa_sdpa

PagesKV = Callable[[list[int], int], tuple[torch.Tensor, torch.Tensor]]  # (pages, layer) -> keys, values on the device


@torch.inference_mode()
def static_page_cache(model, pages_kv: PagesKV, pages: list[int], kept: int, room: int):
    """A static cache of ``kept + room`` slots (bucketed) holding the KV of ``pages`` in its first
    ``kept`` slots; ``room`` counts the query and the new tokens."""
    from transformers import StaticCache

    config = model.config.get_text_config(decoder=True)
    cache = StaticCache(config=config, max_cache_len=static_length(kept + room))
    for layer in range(config.num_hidden_layers):
        keys, values = pages_kv(pages, layer)
        cache.update(keys, values, layer, {"cache_position": torch.arange(kept, device=keys.device)})
    use_gqa_sdpa(model)
    return cache


@torch.inference_mode()
def swap_pages(cache, pages_kv: PagesKV, old: list[int], new: list[int], length: Callable[[int], int]) -> None:
    """Make the first slots of every layer hold the KV of ``new`` (in order) where they held ``old``'s,
    as many tokens: only the pages not already there come from the store (one asynchronous copy a
    layer, :func:`gather_pages`); the others move within the device. The values are the store's, so
    the cache is the one the eager loop rebuilds from scratch."""
    where, kept = {}, 0
    for page in old:
        where[page], kept = range(kept, kept + length(page)), kept + length(page)
    incoming = [page for page in new if page not in where]
    order, fresh = [], kept  # each new slot's source: an old slot, or a row of the incoming pages after them
    for page in new:
        if page not in where:
            where[page], fresh = range(fresh, fresh + length(page)), fresh + length(page)
        order.extend(where[page])
    if len(order) != kept:
        raise RuntimeError(f"RetroLM re-selected {len(order)} tokens of pages where the static cache holds {kept}.")
    order = torch.tensor(order, device=cache.layers[0].keys.device)
    for index, layer in enumerate(cache.layers):
        arrived = pages_kv(incoming, index) if incoming else (layer.keys[:, :, :0], layer.values[:, :, :0])
        for buffer, rows in zip((layer.keys, layer.values), arrived):
            buffer[:, :, :kept].copy_(torch.cat([buffer[:, :, :kept], rows], 2).index_select(2, order))


def gather_pages(store: torch.Tensor, index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``store[:, :, index]`` (``[1, kv_heads, n, head_dim]``) on ``device``. From host memory to a GPU
    the rows are gathered into pinned memory and copied without blocking the host, so the next steps
    are queued while the copy runs (kernels on the same stream wait for it, in order)."""
    if store.device.type == "cuda" or device.type != "cuda":
        return store[:, :, index.to(store.device)].to(device)
    staged = torch.empty((*store.shape[:2], len(index), store.shape[3]), dtype=store.dtype, pin_memory=True)
    torch.index_select(store, 2, index, out=staged)
    return staged.to(device, non_blocking=True)


def queue_next(logits: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor]) -> tuple[int, torch.Tensor]:
    """The greedy token of ``logits`` and the logits after it, ``forward`` of the token (``[1]`` on the
    device). On a GPU the forward is queued before the host reads the token, so the GPU does not wait
    for the host between two steps (the host's Python runs while the GPU computes)."""
    token = logits.argmax()
    if token.device.type != "cuda":
        return int(token), forward(token.view(1))
    host = torch.empty((), dtype=token.dtype, pin_memory=True).copy_(token, non_blocking=True)
    ready = torch.cuda.Event()
    ready.record()
    following = forward(token.view(1))
    ready.synchronize()
    return int(host), following
