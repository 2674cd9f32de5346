"""CompLLM: segment-wise soft compression into concept embeddings (Berton, Unnikrishnan, Tran, Shah,
2025, "CompLLM: Compression for Long Context Q&A", arXiv:2509.19228). No official code is public; this
follows the paper's text.

Steps (Sec. 3):

1. Split the context into segments of at most ``S`` tokens (``segment_tokens``; S = 20 in the paper)
   and compress each one *independently* (Sec. 3, "efficiency, scalability, reusability"): the cost
   is linear in the context length, and a segment seen before is taken from a :class:`SegmentCache`.
2. The compressor is the decoder LLM itself plus a LoRA and one linear layer (Sec. 3.1, Fig. 3). A
   segment of ``n`` token embeddings (TEs) is followed by ``ceil(n / C)`` EOS tokens (C = 2 is the
   paper's ratio); the last-layer hidden states at the EOS positions, through the linear layer, are the
   concept embeddings (CEs), in the decoder's input-embedding space.
3. The CEs of all segments, in order, replace the context's TEs in the frozen decoder's prompt
   (the generator splices them in, :meth:`ragpress.core.lm.CausalLM.chat_embeds`).

The network and its checkpoints are in :mod:`.model`; training (the paper's distillation of the
answer's hidden states) is in :mod:`.train`.

Where we deviate, and why: segments are cut per source chunk (so a chunk retrieved again by another
query hits the cache) at token boundaries of the chunk and re-tokenised from their text (so a cached
segment is a pure function of its text); the last segment of a chunk can be shorter than ``S``. The
paper gives no initialisation for the linear layer: ours starts random at the scale of the decoder's
token embeddings. The encoder holds its own copy of the decoder's weights, so the generator's cached
copy never carries LoRA layers.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch

from ragpress.compressors.base import SoftCompressor
from ragpress.compressors.compllm.model import (
    PAPER_RATIO,
    PAPER_SEGMENT_TOKENS,
    SHIPPED,
    UNTRAINED,
    AdapterConfig,
    CompLLMEncoder,
    concept_embeddings,
    load_checkpoint,
    split_segments,
)
from ragpress.compressors.segment_cache import config_hash, tensors_hash
from ragpress.core.device import resolve_device
from ragpress.core.loaders import cached, load_causal_lm, load_tokenizer
from ragpress.core.stage import public_path
from ragpress.core.types import Chunk, Context


@dataclasses.dataclass
class CompLLM(SoftCompressor):
    """Soft-compress the chunks into CEs for ``decoder`` at ``ratio`` TEs per CE (Sec. 3).

    ``checkpoint``: a directory from ``ragpress train compllm``, ``"auto"`` (the shipped adapters for
    the bundled decoder) or ``"untrained"`` (random adapters: timing and tests only). ``cache``: a
    safetensors file of compressed segments, read on first use when it exists (refused if made for
    another decoder, config, adapters or ratio) and written by :meth:`save_cache`."""

    method: ClassVar[str] = "compllm"
    decoder: str = "smollm2-135m"
    checkpoint: str = "auto"
    ratio: float = PAPER_RATIO
    segment_tokens: int = PAPER_SEGMENT_TOKENS
    batch_size: int = 256
    device: str | None = None

    def __post_init__(self):
        if not isinstance(self.ratio, (int, float)) or self.ratio < 1:
            raise ValueError(f"ratio must be a number >= 1 (token embeddings per concept embedding), got {self.ratio!r}; the paper uses 2.")
        if self.segment_tokens < 1 or self.batch_size < 1:
            raise ValueError("segment_tokens and batch_size must be >= 1 (the paper's segments hold at most 20 tokens).")

    @property
    def encoder(self) -> CompLLMEncoder:
        """The compressor network, loaded once per (decoder, checkpoint, ratio, device) through the core model cache."""
        device = resolve_device(self.device)
        return cached("compllm", self.decoder, self._build_encoder, device, None, self.checkpoint, float(self.ratio))

    def _build_encoder(self) -> CompLLMEncoder:
        lm = load_causal_lm(self.decoder, self.device)
        if self.checkpoint == UNTRAINED:
            config, state = {"adapters": {}}, None
        else:
            directory = SHIPPED.get(self.decoder) if self.checkpoint == "auto" else Path(self.checkpoint)
            if directory is None:
                raise ValueError(
                    f"No CompLLM adapters ship for decoder {self.decoder!r}: train them with "
                    f"`ragpress train compllm --decoder {self.decoder} --out DIR` and pass checkpoint=DIR "
                    f"(or checkpoint={UNTRAINED!r} for random adapters, for timing only)."
                )
            config, state = load_checkpoint(directory)
            self._check_checkpoint(config, lm, directory)
        model = copy.deepcopy(lm.model)  # the generator's cached copy stays free of LoRA layers
        eos_id = config.get("eos_id", lm.tokenizer.eos_token_id)  # the token the adapters were trained to read
        encoder = CompLLMEncoder(model, self.ratio, eos_id, AdapterConfig(**config["adapters"]))
        if state is not None:
            encoder.load_adapter_state(state)
        return encoder.eval()

    def _check_checkpoint(self, config: dict, lm: Any, directory: Path) -> None:
        problems = []
        if config["decoder_config"] != config_hash(lm.model.config):
            problems.append(f"it was trained for decoder {config['decoder']!r} with another architecture or config than {self.decoder!r}")
        if float(config["ratio"]) != float(self.ratio):
            problems.append(f"it was trained at ratio {config['ratio']}, not {self.ratio}")
        if problems:
            raise ValueError(f"The CompLLM checkpoint {directory} does not fit: " + "; ".join(problems) + ". Train one for these settings.")

    def identity(self) -> dict[str, str]:
        """What a cached segment depends on (see :class:`SegmentCache`)."""
        encoder = self.encoder
        return {
            "decoder": self.decoder,
            "decoder_config": config_hash(encoder.lm.config),
            "compressor": public_path(type(self)),
            "adapters": tensors_hash(encoder.adapter_state()),
            "ratio": str(float(self.ratio)),
        }

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        if not any(chunk.text.strip() for chunk in chunks):
            raise ValueError("CompLLM got no context to compress: pass at least one non-empty chunk.")
        tokenizer = load_tokenizer(self.decoder)
        texts, where = [], []
        for index, chunk in enumerate(chunks):
            for start, end in split_segments(chunk.text, tokenizer, self.segment_tokens):
                texts.append(chunk.text[start:end])
                where.append((index, chunk.start + start, chunk.start + end))
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        cache = self.segment_cache
        hits, calls = cache.hits, self.encoder.calls
        rows = concept_embeddings(self.encoder, cache, texts, ids, self.batch_size)
        embeddings = torch.cat(rows)
        return Context(
            query=query,
            embeddings=embeddings,
            tokens_before=sum(len(i) for i in ids),
            tokens_after=len(embeddings),
            metadata={
                "decoder": self.decoder,
                "ratio": self.ratio,
                "segments": [(*w, len(r)) for w, r in zip(where, rows)],  # (chunk index, doc start, doc end, CEs)
                "cache_hits": cache.hits - hits,
                "encoder_calls": self.encoder.calls - calls,
            },
        )
