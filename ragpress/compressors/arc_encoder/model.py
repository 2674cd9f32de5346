"""The ARC-Encoder network (Pilchen, Grave & Pérez, arXiv 2510.20535, §3): the first layers of an
LLM without causal mask, mean-pooled queries in the last block, and one projector plus <Rec>/<Cont>
tokens per decoder; checkpoints as safetensors + JSON. Deviations are listed in
:mod:`ragpress.compressors.arc_encoder.stage`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ragpress.core.bundled import resolve_name
from ragpress.core.settings import read_json

CHECKPOINTS = Path(__file__).parent / "checkpoints"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
REC, CONT = 0, 1  # rows of a decoder's special tokens: <Rec> and <Cont> (paper §3.3)


def group_sizes(n: int, ratio: int) -> list[int]:
    """Sizes of the ``ceil(n / ratio)`` groups of consecutive tokens whose queries are averaged
    (§3.2), as even as possible: 10 tokens at ratio 4 give [4, 3, 3]."""
    if ratio < 1:
        raise ValueError(f"The pooling factor must be at least 1, got {ratio}.")
    groups = math.ceil(n / ratio)
    base, extra = divmod(n, groups)
    return [base + 1] * extra + [base] * (groups - extra)


def pooling_matrix(lengths: list[int], ratio: int) -> torch.Tensor:
    """``[batch, groups, tokens]`` averaging weights: row g of sequence b is 1/size over group g."""
    sizes = [group_sizes(n, ratio) for n in lengths]
    weights = torch.zeros(len(lengths), max(map(len, sizes)), max(lengths))
    for b, groups in enumerate(sizes):
        start = 0
        for g, size in enumerate(groups):
            weights[b, g, start : start + size] = 1.0 / size
            start += size
    return weights


class ArcModel(nn.Module):
    """The trainable ARC-Encoder (§3.1): the first ``layers`` blocks of an LLM used without causal
    mask, mean-pooled queries in the last block (§3.2), and one MLP projector plus <Rec>/<Cont>
    tokens per decoder (§3.3, multi-decoder training), keyed by the decoder's name."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        from peft import LoraConfig, inject_adapter_in_model
        from transformers import AutoModelForCausalLM

        self.config = config
        full = AutoModelForCausalLM.from_pretrained(resolve_name(config["encoder"]), dtype=torch.float32, attn_implementation="sdpa")
        self.backbone = full.base_model
        if not hasattr(self.backbone, "layers") or not hasattr(self.backbone.layers[0], "self_attn"):
            raise ValueError(f"ARC-Encoder needs a Llama-style decoder (model.layers[i].self_attn) as encoder, got {type(full).__name__}.")
        self.backbone.layers = self.backbone.layers[: config["encoder_layers"]]
        self.backbone.requires_grad_(False)
        lora = config["lora"]
        inject_adapter_in_model(LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], target_modules=list(LORA_TARGETS)), self.backbone)
        self.projectors = nn.ModuleDict()
        self.special = nn.ParameterDict()
        decoders, config["decoders"] = config["decoders"], {}
        self.add_decoders({name: spec["hidden"] for name, spec in decoders.items()})

    def add_decoders(self, decoders: dict[str, int]) -> None:
        """A projector and special tokens for each new decoder (name -> hidden size); §3.3 keeps
        these per decoder (under 1 % of the encoder) and shares the encoder."""
        hidden, bottleneck = self.backbone.config.hidden_size, self.config["bottleneck"]
        for name, size in decoders.items():
            if name in self.config["decoders"]:
                if self.config["decoders"][name]["hidden"] != size:
                    raise ValueError(f"The projector for {name!r} outputs {self.config['decoders'][name]['hidden']} dimensions, but that decoder has {size}.")
                continue
            key = f"d{len(self.config['decoders'])}"
            self.config["decoders"][name] = {"key": key, "hidden": size}
            # §3.1: two linear maps without activation, through a dimensional bottleneck
            self.projectors[key] = nn.Sequential(nn.Linear(hidden, bottleneck, bias=False), nn.Linear(bottleneck, size, bias=False))
            self.special[key] = nn.Parameter(torch.ones(2, hidden))  # Tab. 10: special tokens start at ones
            self.projectors[key].to(self.device)
            self.special[key].data = self.special[key].data.to(self.device)

    @classmethod
    def create(cls, encoder: str, decoders: dict[str, int], encoder_layers: int | None = None, lora_rank: int = 8, bottleneck: int | None = None) -> ArcModel:
        """A fresh model for ``decoders`` (name -> hidden size). ``encoder_layers`` defaults to all
        but the last two blocks (§4.1 drops the last two of Llama3.2-3B); ``bottleneck`` to 2/3 of the
        encoder width (3072 -> 2048 in §4.1)."""
        from transformers import AutoConfig

        backbone = AutoConfig.from_pretrained(resolve_name(encoder)).get_text_config()
        layers = encoder_layers or max(1, backbone.num_hidden_layers - 2)
        if not 1 <= layers <= backbone.num_hidden_layers:
            raise ValueError(f"encoder_layers must be between 1 and {backbone.num_hidden_layers} for {encoder!r}, got {layers}.")
        config = {
            "method": "arc-encoder", "encoder": encoder, "encoder_layers": layers,
            "lora": {"rank": lora_rank, "alpha": 2 * lora_rank}, "bottleneck": bottleneck or backbone.hidden_size * 2 // 3,
            "decoders": {name: {"key": f"d{i}", "hidden": hidden} for i, (name, hidden) in enumerate(decoders.items())},
            "trained_ratios": [], "training": {},
        }
        return cls(config)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if "lora_" in k or k.startswith(("projectors.", "special."))}

    def save(self, path: str | Path) -> Path:
        """``config.json`` and ``arc.safetensors`` (LoRA, projectors, special tokens) in float16."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().to("cpu", torch.float16).contiguous() for k, v in self.trainable_state().items()}, path / "arc.safetensors")
        (path / "config.json").write_text(json.dumps(self.config, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ArcModel:
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / "config.json").exists() and (CHECKPOINTS / str(path)).is_dir():
            path = CHECKPOINTS / str(path)  # a bundled checkpoint by name
        if not (path / "config.json").exists() or not (path / "arc.safetensors").exists():
            raise FileNotFoundError(f"No ARC-Encoder checkpoint at {path} (needs config.json and arc.safetensors); bundled: {sorted(p.name for p in CHECKPOINTS.glob('*/'))}.")
        model = cls(read_json(path / "config.json"))
        weights = load_file(path / "arc.safetensors")
        expected = set(model.trainable_state())
        if set(weights) != expected:
            raise ValueError(f"Checkpoint {path} does not match its config: {len(expected ^ set(weights))} tensors differ.")
        model.load_state_dict(weights, strict=False)
        return model

    def projector_key(self, decoder: str) -> str:
        spec = self.config["decoders"].get(decoder)
        if spec is None:
            raise ValueError(
                f"This ARC-Encoder has no projector for the decoder {decoder!r}; it was trained for {sorted(self.config['decoders'])}. "
                f"Soft rows only mean something to the decoder they were trained for: train one with "
                f"`ragpress train arc --decoder {decoder} --init <checkpoint> --freeze-encoder` (§4.2, adaptation to new decoders)."
            )
        return spec["key"]

    @property
    def device(self) -> torch.device:
        return self.backbone.embed_tokens.weight.device

    def encode(self, ids: list[list[int]], ratio: int) -> list[torch.Tensor]:
        """Pooled encoder states ``[ceil(n / ratio), hidden]`` for each token-id sequence."""
        if not ids or any(len(row) == 0 for row in ids):
            raise ValueError("ARC-Encoder cannot compress an empty sequence.")
        lengths = [len(row) for row in ids]
        batch, width = len(ids), max(lengths)
        tokens = torch.zeros(batch, width, dtype=torch.long)
        keep = torch.zeros(batch, width, dtype=torch.bool)
        for b, row in enumerate(ids):
            tokens[b, : len(row)], keep[b, : len(row)] = torch.tensor(row), True
        tokens, keep = tokens.to(self.device), keep.to(self.device)
        h = self.backbone.embed_tokens(tokens)
        mask = keep[:, None, None, :]  # §3.1: no causal mask; padding keys are hidden from every query
        positions = torch.arange(width, device=self.device).expand(batch, width)
        rotary = self.backbone.rotary_emb(h, positions)
        *lower, last = self.backbone.layers
        for layer in lower:
            h = layer(h, attention_mask=mask, position_embeddings=rotary)
        weights = pooling_matrix(lengths, ratio)
        centers = (weights @ torch.arange(width, dtype=torch.float32)[:, None])[..., 0]  # in float32: bf16 would round them
        h = self._pooled_block(last, h, weights.to(self.device, h.dtype), mask, rotary, centers.to(self.device))
        h = self.backbone.norm(h)  # deviation: normalised before the projector (module docstring)
        groups = [len(group_sizes(n, ratio)) for n in lengths]
        return [h[b, :g] for b, g in enumerate(groups)]

    def _pooled_block(self, layer: nn.Module, h: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor, rotary, positions: torch.Tensor) -> torch.Tensor:
        """§3.2, Fig. 1: the last block with queries averaged over groups of consecutive tokens
        (the residual stream averaged the same way); keys and values stay one per token."""
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        attn = layer.self_attn
        pooled = weights @ h
        q_in, kv_in = layer.input_layernorm(pooled), layer.input_layernorm(h)
        batch, groups, width = pooled.shape[0], pooled.shape[1], h.shape[1]
        q = attn.q_proj(q_in).view(batch, groups, -1, attn.head_dim).transpose(1, 2)
        k = attn.k_proj(kv_in).view(batch, width, -1, attn.head_dim).transpose(1, 2)
        v = attn.v_proj(kv_in).view(batch, width, -1, attn.head_dim).transpose(1, 2)
        q_cos, q_sin = self.backbone.rotary_emb(h, positions)  # the group's mean position (deviation)
        q, _ = apply_rotary_pos_emb(q, q, q_cos, q_sin)
        k, _ = apply_rotary_pos_emb(k, k, *rotary)
        repeat = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling)
        h = pooled + attn.o_proj(out.transpose(1, 2).reshape(batch, groups, -1))
        return h + layer.mlp(layer.post_attention_layernorm(h))

    def project(self, pooled: torch.Tensor, decoder: str, task: int = CONT) -> torch.Tensor:
        """The decoder's input rows: pooled states then the task's special token (§3.3), through the
        decoder's own projector."""
        key = self.projector_key(decoder)
        rows = torch.cat([pooled, self.special[key][task : task + 1].to(pooled.dtype)])
        return self.projectors[key](rows)
