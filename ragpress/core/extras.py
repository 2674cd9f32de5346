"""Optional dependencies by family: ``pip install ragpress`` is light (core types, the pipeline,
BM25, the OpenAI-compatible generator); each extra adds what a family of stages needs. Code that
needs an optional module calls :func:`require` before importing it (model loaders when a model is
first loaded, modules that import torch or faiss at their top), so a missing extra fails where it is
used, naming the pip command that installs it."""

from __future__ import annotations

import importlib.util

EXTRAS: dict[str, tuple[str, ...]] = {
    "models": ("torch", "accelerate", "safetensors", "peft", "gguf", "sentence_transformers", "spacy"),
    "faiss": ("faiss",),
    "code": ("tree_sitter",),
    "viz": ("matplotlib",),
    "train": ("gensim",),
    "llamaindex": ("llama_index.core",),
    "langchain": ("langchain_core",),
    "serve": ("fastapi", "uvicorn"),
    "eval": ("wonderwords", "llmlingua", "tiktoken_ext"),
    "scale": ("lancedb", "ray"),
}
EXTRA_OF = {module: extra for extra, modules in EXTRAS.items() for module in modules}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is absent
        return False


def require(*modules: str, what: str = "This part of ragpress") -> None:
    """Raise ImportError naming the pip command when any of ``modules`` (keys of :data:`EXTRA_OF`) is missing."""
    absent = [m for m in modules if not installed(m)]
    if absent:
        extras = ",".join(dict.fromkeys(EXTRA_OF[m] for m in absent))
        raise ImportError(f"{what} needs {', '.join(absent)}, which is not installed: pip install 'ragpress[{extras}]'")
