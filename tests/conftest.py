"""Shared fixtures: tiny randomly initialised models saved to disk, so stages load them by path
exactly as they would a hub id. Real bundled models are used only by tests marked ``integration``."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch
from hypothesis import settings

# CI gets one run per submission: fixed examples there, so a red build can be replayed; local runs keep exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_lm_path(tmp_path_factory) -> str:
    """A 4-layer Llama with hidden size 32 and the SmolLM2 tokenizer, random weights (seed 0)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from ragpress.models import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_lm")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_lm(tiny_lm_path):
    from ragpress.models import load_causal_lm

    return load_causal_lm(tiny_lm_path, device="cpu")


@pytest.fixture(scope="session")
def tiny_embedder_path(tmp_path_factory) -> str:
    """A 2-layer BERT sentence embedder (mean pooling, normalised) with the MiniLM tokenizer."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    from ragpress.models import load_tokenizer

    tokenizer = load_tokenizer("minilm-l6")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    base = tmp_path_factory.mktemp("tiny_bert")
    BertModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    encoder = models.Transformer(str(base), max_seq_length=128)
    model = SentenceTransformer(modules=[encoder, models.Pooling(32, "mean"), models.Normalize()])
    path = tmp_path_factory.mktemp("tiny_embedder")
    model.save(str(path))
    return str(path)
