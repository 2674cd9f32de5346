"""ARC-Encoder: an LLM encoder that pools its last self-attention queries x-times, plus a small
projector per decoder; the output rows replace token embeddings in a frozen decoder.

Pilchen, Grave & Pérez, "ARC-Encoder: learning compressed text representations for large language
models" (Kyutai, arXiv 2510.20535). The network is in :mod:`.model`, training in :mod:`.train`.

Deviations from the paper (each also noted where it happens):
- Encoder adapters are LoRA (rank 8 on every linear layer) instead of training all weights, so a
  checkpoint is a few MB; the paper's ablation (Tab. 5) found LoRA within a point of full training.
- The encoder's final RMSNorm is applied before the projector: a small LM's residual stream carries
  outlier activations (above 10^4 in SmolLM2) that a short training run could not tame.
- A pooled query's rotary position is the mean position of its group (the official code numbers
  pooled queries 0, 1, 2...), so it keeps its place among the keys it attends to.
"""


from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ragpress.compressors.arc_encoder.model import ArcModel
from ragpress.compressors.base import SoftCompressor
from ragpress.compressors.segment_cache import config_hash, tensors_hash
from ragpress.core.bundled import resolve_name
from ragpress.core.device import resolve_device
from ragpress.core.loaders import cached, load_tokenizer
from ragpress.core.stage import public_path
from ragpress.core.types import Chunk, Context


@dataclasses.dataclass
class ArcEncoder(SoftCompressor):
    """Compress each chunk into ``ceil(tokens / ratio)`` soft rows plus a <Cont> row (§4.1: appended
    after every compressed sequence at inference), for the frozen ``decoder``; ``ratio`` is the
    paper's pooling factor (4 or 8).

    ``checkpoint`` is a bundled name or a directory from ``ragpress train arc``; its config names the
    encoder LLM. Chunks longer than ``max_tokens`` are cut into windows compressed in parallel, as in
    the paper's long-context setting (§4.3).

    A chunk's rows depend only on its text, so they are cached by content (:class:`SegmentCache`);
    ``cache`` names a safetensors file to load them from (refused when it was made for another
    decoder, encoder checkpoint, ratio or window) and :meth:`save_cache` writes to."""

    method: ClassVar[str] = "arc_encoder"
    decoder: str = "smollm2-135m"
    checkpoint: str = "arc-smollm2"
    ratio: int = 4
    max_tokens: int = 256
    batch_size: int = 16
    device: str | None = None

    def __post_init__(self):
        if not isinstance(self.ratio, int) or self.ratio < 1:
            raise ValueError(f"ratio (the pooling factor) must be an integer of at least 1, got {self.ratio!r}; the paper uses 4 or 8.")
        if self.max_tokens < self.ratio:
            raise ValueError(f"max_tokens ({self.max_tokens}) must be at least the pooling ratio ({self.ratio}).")

    @property
    def encoder(self) -> ArcModel:
        """The trained network, loaded once per (checkpoint, device) through the core model cache."""
        device = resolve_device(self.device)
        model = cached("arc_encoder", self.checkpoint, lambda: ArcModel.load(self.checkpoint).to(device).eval(), device)
        model.projector_key(self.decoder)  # refuses a decoder the checkpoint has no projector for
        return model

    def identity(self) -> dict[str, str]:
        """What a chunk's rows depend on (see :class:`SegmentCache`)."""
        from transformers import AutoConfig

        model = self.encoder
        return {
            "compressor": public_path(type(self)),
            "decoder": self.decoder,
            "decoder_config": config_hash(AutoConfig.from_pretrained(resolve_name(self.decoder))),
            "encoder": model.config["encoder"],
            "checkpoint": tensors_hash(model.trainable_state()),
            "ratio": str(self.ratio),
            "max_tokens": str(self.max_tokens),
        }


    @torch.inference_mode()
    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        model, cache = self.encoder, self.segment_cache
        tokenizer = load_tokenizer(model.config["encoder"])
        texts = [chunk.text for chunk in chunks if chunk.text]
        if not texts:
            raise ValueError("ARC-Encoder got only empty chunks: nothing to compress.")
        hits = cache.hits
        found = {text: cache.get(text) for text in dict.fromkeys(texts)}  # each distinct text looked up once
        windows, owner = [], []
        for text in (t for t, rows in found.items() if rows is None):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            spans = range(0, len(ids), self.max_tokens)
            windows.extend(ids[i : i + self.max_tokens] for i in spans)
            owner.extend([text] * len(spans))
        parts: dict[str, list[torch.Tensor]] = {}
        for i in range(0, len(windows), self.batch_size):
            for text, pooled in zip(owner[i : i + self.batch_size], model.encode(windows[i : i + self.batch_size], self.ratio)):
                parts.setdefault(text, []).append(model.project(pooled, self.decoder).float().cpu())
        for text, rows in parts.items():
            found[text] = torch.cat(rows)
            cache.put(text, found[text])
        soft = torch.cat([found[text] for text in texts])
        decoder_tokens = load_tokenizer(self.decoder)
        before = sum(len(decoder_tokens(t, add_special_tokens=False)["input_ids"]) for t in texts)  # §4.2: PF in decoder tokens
        metadata = {"decoder": self.decoder, "ratio": self.ratio, "windows_encoded": len(windows), "cache_hits": cache.hits - hits,
                    "checkpoint": self.checkpoint}
        return Context(query, embeddings=soft, tokens_before=before, tokens_after=soft.shape[0], metadata=metadata)
