"""The Provence network and its loader: one encoder pass over ``[CLS] query [SEP] passage [SEP]``
feeding a token keep/drop head and a passage rerank head.

Chirkova et al., "Provence: efficient and robust context pruning for retrieval-augmented
generation" (arXiv 2501.16214, ICLR 2025), Sec. 3: context pruning is cast as binary sequence
labelling on top of a cross-encoder reranker, and the reranking score comes from the same forward
pass. The heads follow the released ``modeling_provence.py`` (naver/provence-reranker-debertav3-v1):
``pooler.dense`` + GELU on the first token, then ``classifier`` (one logit: the rerank score), and
``token_classifier`` (two logits per token; softmax index 1 is P(keep)).

Two checkpoint layouts load here:

* ours (``config.json`` with ``"format": "ragpress-provence"``): a base encoder named by alias, id or
  path, LoRA deltas (merged into the encoder's weights at load, so inference needs no ``peft``) and
  the two heads, all in one small safetensors file. The bundled ``"provence-minilm"`` is one.
* the released one (``"model_type": "Provence"``, a DeBERTa-v3 with keys ``deberta.*``,
  ``pooler.dense.*``, ``classifier.*``, ``token_classifier.*``): rebuilt as a plain
  ``DebertaV2Model`` plus our heads, so no remote code runs. Local path or hub id (hub cache).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ragpress.core.bundled import ModelLoadError, resolve_name
from ragpress.core.device import resolve_device, resolve_dtype
from ragpress.core.loaders import cached
from ragpress.core.settings import read_json
from ragpress.core.text import harden

CHECKPOINTS = Path(__file__).parent / "checkpoints"
SHIPPED = {"provence-minilm": CHECKPOINTS / "provence-minilm"}
FORMAT = "ragpress-provence"


class ProvenceModel(nn.Module):
    """Encoder + rerank head + token head. ``forward`` returns ``(keep_logits [B, T, 2],
    rerank_scores [B])``."""

    def __init__(self, encoder: nn.Module, pooler_hidden_size: int | None = None, dropout: float = 0.1):
        super().__init__()
        hidden = encoder.config.hidden_size
        self.encoder = encoder
        self.pooler = nn.Sequential()
        self.pooler.add_module("dense", nn.Linear(hidden, pooler_hidden_size or hidden))
        self.pooler.add_module("act", nn.GELU())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(pooler_hidden_size or hidden, 1)
        self.token_classifier = nn.Linear(hidden, 2)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        pooled = self.pooler(self.dropout(states[:, 0]))
        rerank = self.classifier(self.dropout(pooled))[:, 0]
        return self.token_classifier(self.dropout(states)), rerank

    def head_state(self) -> dict[str, torch.Tensor]:
        """The head weights, keyed as in the released checkpoint."""
        return {f"{k}": v for k, v in self.state_dict().items() if not k.startswith("encoder.")}


def load_provence(name: str, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None):
    """``(ProvenceModel, tokenizer, config)`` for ``name``: a shipped alias, a directory in either
    layout, or a hub id of the released checkpoint; loaded once per ``(name, device, dtype)`` through
    the core model cache (:func:`ragpress.models.unload` frees it)."""
    device = resolve_device(device)
    dtype = resolve_dtype(device, dtype)

    def build():
        path = _local_path(name)
        config = read_json(path / "config.json")
        if config.get("format") == FORMAT:
            model, tokenizer = _load_ours(path, config)
        elif config.get("model_type") == "Provence" or "Provence" in config.get("architectures", ()):
            model, tokenizer = _load_released(path, config)
        else:
            raise ModelLoadError(
                f"{name!r} is neither a ragpress Provence checkpoint (config 'format': {FORMAT!r}) nor the released "
                f"Provence layout (model_type 'Provence'); train one with `ragpress train provence` or pass "
                f"'provence-minilm' or 'naver/provence-reranker-debertav3-v1'."
            )
        return model.to(device=device, dtype=dtype).eval(), tokenizer, config

    return cached("provence", name, build, device, dtype)


def _local_path(name: str) -> Path:
    if name in SHIPPED:
        return SHIPPED[name]
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path} has no config.json; it is not a Provence checkpoint directory.")
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
    except Exception as error:  # offline without a cache, unknown id, ...
        raise ModelLoadError(
            f"Could not find Provence checkpoint {name!r} ({type(error).__name__}: {error}). Use 'provence-minilm' "
            f"(bundled), a local directory, or a hub id such as 'naver/provence-reranker-debertav3-v1' with network "
            f"access or a local hub cache."
        ) from error


def _load_ours(path: Path, config: dict):
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    base = resolve_name(config["base_model"])
    try:
        encoder = AutoModel.from_pretrained(base, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"Could not load the base encoder {config['base_model']!r} of {path}: {error}") from error
    drop_pooling_layer(encoder)
    weights = load_file(str(path / "weights.safetensors"))
    merge_lora(encoder, {k[len("lora.") :]: v for k, v in weights.items() if k.startswith("lora.")}, config["lora"]["scaling"])
    model = ProvenceModel(encoder, config.get("pooler_hidden_size"))
    model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("lora.")}, strict=False)
    missing = set(model.head_state()) - set(weights)
    if missing:
        raise ModelLoadError(f"{path}/weights.safetensors lacks head weights {sorted(missing)}.")
    return model, harden(tokenizer)


def drop_pooling_layer(encoder: nn.Module) -> None:
    """BERT-style encoders carry an unused pooler (our pooler is a head of its own)."""
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None


def merge_lora(encoder: nn.Module, lora: dict[str, torch.Tensor], scaling: float) -> None:
    """Add ``scaling * B @ A`` to the weight of every linear layer named in ``lora``
    (keys ``"<module path>.A"`` / ``"<module path>.B"``)."""
    modules = dict(encoder.named_modules())
    for key in [k for k in lora if k.endswith(".A")]:
        name = key[: -len(".A")]
        if name not in modules:
            raise ModelLoadError(f"LoRA weights name module {name!r}, which the base encoder lacks: wrong base_model?")
        layer = modules[name]
        with torch.no_grad():
            layer.weight += scaling * (lora[name + ".B"].float() @ lora[key].float()).to(layer.weight.dtype)


def _load_released(path: Path, config: dict):
    """The released layout: a DeBERTa-v2/v3 config under model_type 'Provence'."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model

    fields = {k: v for k, v in config.items() if k not in ("model_type", "architectures", "auto_map")}
    encoder = DebertaV2Model(DebertaV2Config(**fields))
    model = ProvenceModel(encoder, config.get("pooler_hidden_size"), dropout=config.get("hidden_dropout_prob", 0.1))
    state = load_file(str(path / "model.safetensors"))
    renamed = {("encoder." + k[len("deberta.") :] if k.startswith("deberta.") else k): v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing or unexpected:
        raise ModelLoadError(f"{path} does not match the released Provence layout: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    return model, harden(AutoTokenizer.from_pretrained(path))
