"""Where models run, in what precision and in batches of what size, chosen here and nowhere else:
CUDA when present, else the CPU; bfloat16 on a GPU, float32 on the CPU; batches sized to the
device's free memory."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def default_batch_size(device: torch.device, cpu: int, item_bytes: int, most: int = 256) -> int:
    """The batch size of a stage that sets none: ``cpu`` on the CPU (sized for a 24 GiB host), and on
    a GPU as many items of about ``item_bytes`` as half its free memory holds, from ``cpu`` up to
    ``most`` (a small model's forward is launch-bound, so a GPU runs a wide batch in about the time of
    one item)."""
    if device.type != "cuda":
        return cpu
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(cpu, min(most, free // 2 // item_bytes)))
