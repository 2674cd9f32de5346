import torch

from ragpress.core.device import default_batch_size, free_bytes

GiB = 2**30


def fake_gpu(monkeypatch, free, total=80 * GiB, allocated=0, reserved=0, fraction=1.0):
    """torch.cuda's memory queries answering for a GPU this CPU host does not have."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, total))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: allocated)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: reserved)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device: fraction if isinstance(device, int) else 1 / 0)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)  # plain "cuda" reaches torch.cuda as an index


def test_default_batch_size_is_the_cpu_value_on_the_cpu_and_grows_with_free_gpu_memory(monkeypatch):
    assert default_batch_size(torch.device("cpu"), 8, 2**28) == 8
    fake_gpu(monkeypatch, free=40 * GiB)
    assert default_batch_size(torch.device("cuda"), 8, 2**28, most=128) == 80  # half of 40 GiB free, 256 MiB an item
    assert default_batch_size(torch.device("cuda"), 8, 2**28, most=64) == 64
    fake_gpu(monkeypatch, free=2**29)
    assert default_batch_size(torch.device("cuda"), 8, 2**28) == 8  # a nearly full GPU keeps the CPU's size


def test_free_bytes_counts_this_process_cache_and_keeps_under_its_memory_fraction(monkeypatch):
    cuda = torch.device("cuda")
    fake_gpu(monkeypatch, free=40 * GiB, allocated=10 * GiB, reserved=14 * GiB)
    assert free_bytes(cuda) == 44 * GiB  # the 4 GiB cached but unused are this process's to reuse
    fake_gpu(monkeypatch, free=40 * GiB, allocated=10 * GiB, reserved=14 * GiB, fraction=0.25)
    assert free_bytes(cuda) == 10 * GiB  # a quarter of 80 GiB, 10 of them taken
    assert default_batch_size(cuda, 2, GiB) == 5  # half of those 10 GiB at 1 GiB an item
    fake_gpu(monkeypatch, free=40 * GiB, allocated=30 * GiB, reserved=30 * GiB, fraction=0.25)
    assert free_bytes(cuda) == 0  # over its share already: nothing more
