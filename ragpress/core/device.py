"""Where models run, in what precision and in batches of what size, chosen here and nowhere else:
CUDA when present, else the CPU; bfloat16 on a GPU, float32 on the CPU; batches sized to the
device's free memory."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import numpy as np
import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def text_config(config):
    """The decoder's config of ``config`` (a multimodal model's text part; a plain config as it is)."""
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def layer_widths(config) -> tuple[int, int]:
    """``(hidden, intermediate)`` sizes of the decoder of ``config``, with defaults for configs that name neither."""
    config = text_config(config)
    hidden = int(getattr(config, "hidden_size", 1024))
    return hidden, int(getattr(config, "intermediate_size", 4 * hidden) or 4 * hidden)


def forward_bytes_per_token(config, logits: bool) -> int:
    """About how many bytes of activations one token of a forward pass holds at its peak: the
    float logits and their log-softmax when ``logits`` (they dominate for small models with large
    vocabularies), plus the widest layer's activations."""
    hidden, wide = layer_widths(config)
    return (12 * int(getattr(text_config(config), "vocab_size", 32000)) if logits else 0) + 8 * (hidden + wide)


def token_budget(device: torch.device, bytes_per_token: int, cpu_tokens: int = 8192) -> int:
    """Tokens (rows times padded width) one batched forward may hold: ``cpu_tokens`` on the CPU
    (sized so a forward stays within a few GiB of a 24 GiB host), and on a GPU as many as 40% of its
    free memory holds at ``bytes_per_token`` (at least ``cpu_tokens``). Stages use it when their
    ``batch_size`` is ``None``."""
    return free_memory_share(device, cpu_tokens, 0.4, max(bytes_per_token, 1))


def attention_budget(device: torch.device, config, cpu_pairs: int = 2**25) -> int:
    """Query-key pairs (rows times queries times keys) one batched forward may hold: attention with
    a padding mask can fall back to materialising its scores, which then grow with the square of
    the width, so long rows need a bound of their own. ``cpu_pairs`` on the CPU (two 4096-token
    windows); on a GPU 20% of its free memory at about 8 bytes per pair and head."""
    return free_memory_share(device, cpu_pairs, 0.2, 8 * int(getattr(text_config(config), "num_attention_heads", 16)))


def forward_budget(device: torch.device, config, logits: bool) -> tuple[int, int]:
    """``(tokens, pairs)`` one batched forward of a model with ``config`` may hold on ``device``: its
    :func:`token_budget` (``logits``: the LM head's logits are kept) and :func:`attention_budget`."""
    return token_budget(device, forward_bytes_per_token(config, logits)), attention_budget(device, config)


def forward_batches(
    lengths: list[int], batch_size: int | None, device: torch.device, config, logits: bool, dtype: torch.dtype,
) -> list[list[int]]:
    """Rows of ``lengths`` grouped for batched forwards (:func:`length_batches`): ``batch_size`` rows
    a batch, or with ``None`` as many as :func:`forward_budget` allows on ``device``, cut where padding
    and forwards of a model in ``dtype`` cost least together (:func:`padding_allowance`)."""
    if batch_size is not None:
        return length_batches(lengths, sys.maxsize, most_rows=batch_size)
    tokens, pairs = forward_budget(device, config, logits)
    return length_batches(lengths, tokens, pairs=pairs, padding=padding_allowance(device, config, dtype))


def padded_attention(device: torch.device) -> contextlib.AbstractContextManager:
    """The attention kernels for forwards of left-padded batches on ``device``: on CUDA, PyTorch's
    SDPA without its cuDNN backend (flash, memory-efficient, math), elsewhere no change. A padding
    mask sends SDPA to cuDNN on Hopper in bfloat16, which builds a graph for every new batch shape:
    on an H200 margin sampling's first pass over 100 documents took 20.7 s against 13.1 s for the
    same shapes again, a gap float32 (no cuDNN attention) did not show; and cuDNN's execute fails
    now and then (pytorch/pytorch#190321, seen here once in 444 eval rows)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def left_padded(rows: Sequence[Sequence[int] | torch.Tensor], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token rows left-padded into ``(ids, attention mask, position ids)`` on ``device``: every row
    ends at the last column, and its positions count from its first token, so padding shifts none."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :], mask[r, width - len(row) :] = torch.as_tensor(row), 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def length_batches(
    lengths: list[int], tokens: int, most_rows: int | None = None, pairs: int | None = None, reach: list[int] | None = None,
    padding: int | None = None,
) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches, shortest first, so that each batch's rows times
    its longest row stay within ``tokens``, rows times longest row times longest ``reach`` (keys a
    row attends to; default its length) within ``pairs``, and rows within ``most_rows``; a row
    over a bound goes alone. Without ``padding`` each batch is filled in length order up to the bounds.
    With it (a forward's fixed cost in tokens, :func:`padding_allowance`) the length-sorted rows are cut
    where the total cost, ``padding`` per batch plus rows times width, is least (:func:`_least_cost_cuts`):
    rows of very different lengths otherwise cost the longest one's width each."""
    reach = reach or lengths
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if padding is not None:
        cuts = _least_cost_cuts([lengths[i] for i in order], [reach[i] for i in order], tokens, most_rows, pairs, padding)
        return [order[a:b] for a, b in zip(cuts, cuts[1:])]
    batches: list[list[int]] = []
    for i in order:
        group = batches[-1] if batches else None
        rows = len(group) + 1 if group else 1
        full = (
            group is None
            or rows * lengths[i] > tokens
            or (most_rows is not None and rows > most_rows)
            or (pairs is not None and rows * lengths[i] * max(reach[i], *(reach[j] for j in group)) > pairs)
        )
        if full:
            batches.append([i])
        else:
            group.append(i)
    return batches


def _least_cost_cuts(lengths: list[int], reach: list[int], tokens: int, most_rows: int | None, pairs: int | None, padding: int,
                     widest: int = 4096) -> list[int]:
    """Where to cut sorted ``lengths`` into batches at least total cost (``padding`` a batch plus rows
    times its longest row) within the bounds of :func:`length_batches`: dynamic programming over the
    last batch's first row, at most ``widest`` rows a batch (more saves nothing worth the search)."""
    width, far = np.asarray(lengths, dtype=np.float64), np.asarray(reach, dtype=np.float64)
    best, first = np.zeros(len(lengths) + 1), np.zeros(len(lengths) + 1, dtype=np.int64)
    for end in range(1, len(lengths) + 1):
        lo = max(0, end - min(widest, most_rows or widest))
        rows = np.arange(end - lo, 0, -1, dtype=np.float64)  # the batch lengths[i:end] for i = lo .. end - 1
        fits = rows * width[end - 1] <= tokens
        if pairs is not None:
            fits &= rows * width[end - 1] * np.maximum.accumulate(far[lo:end][::-1])[::-1] <= pairs
        fits[-1] = True  # a row over a bound goes alone
        cost = np.where(fits, best[lo:end] + padding + rows * width[end - 1], np.inf)
        k = int(np.argmin(cost))
        best[end], first[end] = cost[k], lo + k
    cuts, end = [len(lengths)], len(lengths)
    while end:
        end = int(first[end])
        cuts.append(end)
    return cuts[::-1]


# What one forward pass costs apart from its tokens (Python and kernel launches) and the rate its
# tokens run at, by device kind and dtype, measured with SmolLM2-135M-Instruct (106M parameters
# outside the embeddings; FLOPs counted as 2 per parameter and token). CPU, the 2-core CI host,
# float32: a one-token forward 38 ms, 1,024 tokens at 169 GFLOP/s. H200 (benchmarks.forward_cost,
# 2026-11-30): a one-token forward 33 ms in float32 and 19 ms in bfloat16; 32 x 512 tokens at
# 23.6 TFLOP/s in float32 and 132 TFLOP/s in bfloat16; float16 takes bfloat16's (the same tensor
# cores, not measured apart). Other dtypes use their device's float32 entry.
FORWARD_COST = {
    ("cpu", torch.float32): (0.038, 1.69e11),
    ("cuda", torch.float32): (0.033, 2.36e13),
    ("cuda", torch.bfloat16): (0.019, 1.32e14),
    ("cuda", torch.float16): (0.019, 1.32e14),
}


def step_parameters(config) -> int:
    """Weights each token passes through in a forward of a model with ``config``, outside the
    embeddings and the LM head (attention projections and MLP of every layer)."""
    hidden, wide = layer_widths(config)
    config = text_config(config)
    heads = int(getattr(config, "num_attention_heads", 16))
    kv = int(getattr(config, "num_key_value_heads", heads) or heads)
    return int(int(getattr(config, "num_hidden_layers", 12)) * (hidden * hidden * (2 + 2 * kv / heads) + 3 * hidden * wide))


def padding_allowance(device: torch.device, config, dtype: torch.dtype) -> int:
    """Padded tokens that cost about one more forward pass of a model with ``config`` in ``dtype`` on
    ``device``: the fixed cost of a forward over the time one token's FLOPs take (:data:`FORWARD_COST`).
    About 30 tokens for SmolLM2-135M on a CPU; on an H200 about 3.7K in float32 and 11.6K in bfloat16,
    and 170 for an 8B model in bfloat16."""
    kind = "cuda" if device.type == "cuda" else "cpu"
    fixed_s, flop_rate = FORWARD_COST.get((kind, dtype), FORWARD_COST[(kind, torch.float32)])
    return max(1, int(fixed_s * flop_rate / (2 * step_parameters(config))))


def default_batch_size(device: torch.device, cpu: int, item_bytes: int, most: int = 256) -> int:
    """The batch size of a stage that sets none: ``cpu`` on the CPU (sized for a 24 GiB host), and on
    a GPU as many items of about ``item_bytes`` as half its free memory holds, from ``cpu`` up to
    ``most`` (a small model's forward is launch-bound, so a GPU runs a wide batch in about the time of
    one item)."""
    return free_memory_share(device, cpu, 0.5, item_bytes, most)


def free_memory_share(device: torch.device, cpu: int, share: float, item_bytes: int, most: int | None = None) -> int:
    """How many items of ``item_bytes`` a batch may hold: ``cpu`` on the CPU, and on a GPU as many as
    ``share`` of its :func:`free_bytes` holds, at least ``cpu`` and at most ``most``."""
    if device.type != "cuda":
        return cpu
    fits = int(share * free_bytes(device)) // item_bytes
    return max(cpu, fits if most is None else min(most, fits))


def free_bytes(device: torch.device) -> int:
    """Bytes of GPU memory this process may still allocate on ``device``: the device's free memory plus
    what this process's allocator caches unused, and no more than its share under
    ``torch.cuda.set_per_process_memory_fraction`` leaves. Processes that share a GPU (eval workers)
    each set a fraction, so one process's budget cannot starve the others. The one place the budgets
    read the GPU's memory."""
    device = cuda_index(device)
    free, total = torch.cuda.mem_get_info(device)
    allocated = torch.cuda.memory_allocated(device)
    cached = torch.cuda.memory_reserved(device) - allocated
    fraction = getattr(torch.cuda, "get_per_process_memory_fraction", lambda _: 1.0)(device)  # torch >= 2.9
    cap = int(fraction * total) - allocated
    return max(0, min(free + cached, cap))


def cuda_index(device: torch.device) -> int:
    """The index of a CUDA ``device``; plain ``cuda`` is the current device (some torch.cuda calls
    take no index-less device)."""
    return torch.cuda.current_device() if device.index is None else device.index
