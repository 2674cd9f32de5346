import torch

from ragpress.core.device import default_batch_size


def test_default_batch_size_is_the_cpu_value_on_the_cpu_and_grows_with_free_gpu_memory(monkeypatch):
    assert default_batch_size(torch.device("cpu"), 8, 2**28) == 8
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (40 * 2**30, 80 * 2**30))
    assert default_batch_size(torch.device("cuda"), 8, 2**28, most=128) == 80  # half of 40 GiB free, 256 MiB an item
    assert default_batch_size(torch.device("cuda"), 8, 2**28, most=64) == 64
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**29, 80 * 2**30))
    assert default_batch_size(torch.device("cuda"), 8, 2**28) == 8  # a nearly full GPU keeps the CPU's size
