"""RetroLM's step 4 on the fast decode path (:mod:`ragpress.core.decode`): the retrieved pages, the
query and the new tokens live in one preallocated :class:`~transformers.StaticCache`, so every
decoding step has the same shapes and addresses and can run as one compiled CUDA graph.

Slots ``[0, kept)`` hold the selected pages in context order (keys stored rotated at their original
positions, as in :meth:`PagedContext._cache`); the query and the generated tokens follow. A page
re-selection keeps the number of pages (the fixed pages plus ``pages_kept``), so it overwrites the
first ``kept`` slots in place, one batched gather per layer, and the slots after them stay as they
are: exactly what the eager loop's rebuilt cache holds. Attention reads the whole buffer under the
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
def swap_pages(cache, pages_kv: PagesKV, pages: list[int], kept: int) -> None:
    """Overwrite the first ``kept`` slots of every layer with the KV of ``pages`` (as many tokens)."""
    for index, layer in enumerate(cache.layers):
        keys, values = pages_kv(pages, index)
        if keys.shape[2] != kept:
            raise RuntimeError(f"RetroLM re-selected {keys.shape[2]} tokens of pages where the static cache holds {kept}.")
        layer.keys[:, :, :kept].copy_(keys)
        layer.values[:, :, :kept].copy_(values)
