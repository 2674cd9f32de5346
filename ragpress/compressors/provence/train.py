"""Training a Provence pruner + reranker: ``ragpress train provence --out DIR [--data train.jsonl]``
(without ``--data``: questions made by construction from the corpus's training articles, as the
shipped checkpoint was trained).

Chirkova et al., "Provence" (arXiv 2501.16214), Sec. 3 and the released ``train_provence.py``:

* Data: one row per (query, passage) pair, with a 0/1 relevance label per passage sentence (the paper
  gets them from an LLM, see :mod:`ragpress.compressors.provence.data`) and, optionally, a teacher
  rerank score. JSONL fields: ``query``, ``passage``, ``sentence_labels`` and optionally
  ``sentence_spans`` (``[[start, end], ...]`` char spans in the passage; default: spaCy sentences
  from :func:`~ragpress.chunkers.sentence.split_sentences`) and ``rerank_score``.
* Labels: every token of a labelled sentence gets its sentence's label; query and special tokens
  get 0, as in the released script (padding is ignored: the released script labels it 0 too).
  Passages longer than the window are split into windows exactly as at inference.
* Loss: token cross-entropy + ``ranking_weight`` * MSE(rerank score, teacher score). The paper
  distils the initial reranker's scores; rows without ``rerank_score`` add no ranking loss.
  ``ranking_weight`` 0.05 is the weight we read for the paper (the released script defaults to 1).

Deviation: the paper fine-tunes every weight of a DeBERTa-v3 reranker (lr 3e-6, batch 48, 1 epoch);
we train LoRA adapters (``peft``) on the encoder plus the two new heads, so a checkpoint is a few MB
and the base encoder is shared; the learning rate is LoRA-sized (2e-4).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ragpress.chunkers.sentence import split_sentences
from ragpress.compressors.provence.model import FORMAT, ProvenceModel, drop_pooling_layer
from ragpress.compressors.provence.stage import normalize_query, token_sentences, windows
from ragpress.core.bundled import resolve_name
from ragpress.core.device import resolve_device

LORA_TARGETS = r".*encoder\.layer\.\d+\..*\.(query|key|value|query_proj|key_proj|value_proj|dense)"


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a training JSONL file, checked (errors name the line and the fix)."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("query"), str) or not row["query"].strip():
            raise ValueError(f"{path}:{n}: 'query' must be a non-empty string.")
        if not isinstance(row.get("passage"), str):
            raise ValueError(f"{path}:{n}: 'passage' must be a string.")
        labels = row.get("sentence_labels")
        if not isinstance(labels, list) or any(v not in (0, 1) for v in labels):
            raise ValueError(f"{path}:{n}: 'sentence_labels' must be a list of 0/1, one per sentence of the passage.")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path} has no rows; expected JSONL lines with query, passage, sentence_labels.")
    return rows


def encode_rows(rows: list[dict[str, Any]], tokenizer, max_length: int) -> list[dict[str, Any]]:
    """Token ids, token labels and rerank target of every window of every row."""
    examples = []
    for n, row in enumerate(tqdm(rows, desc="Provence: encoding", disable=len(rows) < 200, leave=False)):
        spans = [tuple(s) for s in row.get("sentence_spans") or split_sentences(row["passage"])]
        if len(spans) != len(row["sentence_labels"]):
            raise ValueError(
                f"Row {n}: {len(row['sentence_labels'])} sentence labels for {len(spans)} sentences; give "
                "'sentence_spans' with the labels, or label the sentences split_sentences(passage) finds."
            )
        q_ids = tokenizer(normalize_query(row["query"]), add_special_tokens=False)["input_ids"][: max_length // 2]
        enc = tokenizer(row["passage"], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        owner = token_sentences(enc["offset_mapping"], spans)
        token_labels = [row["sentence_labels"][o] for o in owner] if spans else []
        head = [tokenizer.cls_token_id, *q_ids, tokenizer.sep_token_id]
        for a, b in windows(owner, max_length - len(head) - 1) or [(0, 0)]:
            examples.append({
                "ids": head + enc["input_ids"][a:b] + [tokenizer.sep_token_id],
                "labels": [0] * len(head) + token_labels[a:b] + [0],
                "types": [0] * len(head) + [1] * (b - a + 1),
                "rerank": row.get("rerank_score"),
            })
    return examples


def _batch(examples: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e["ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    mask, types = torch.zeros_like(ids), torch.zeros_like(ids)
    for r, e in enumerate(examples):
        n = len(e["ids"])
        ids[r, :n], labels[r, :n], types[r, :n], mask[r, :n] = torch.tensor(e["ids"]), torch.tensor(e["labels"]), torch.tensor(e["types"]), 1
    rerank = torch.tensor([e["rerank"] if e["rerank"] is not None else math.nan for e in examples], dtype=torch.float)
    return {"ids": ids, "mask": mask, "types": types, "labels": labels, "rerank": rerank}


def provence_loss(model: ProvenceModel, batch: dict[str, torch.Tensor], ranking_weight: float, uses_types: bool):
    """Token cross-entropy + ranking_weight * MSE to the teacher score (rows with a score only)."""
    device = next(model.parameters()).device
    logits, scores = model(batch["ids"].to(device), batch["mask"].to(device), batch["types"].to(device) if uses_types else None)
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 2), batch["labels"].to(device).reshape(-1), ignore_index=-100)
    target = batch["rerank"].to(device)
    scored = ~torch.isnan(target)
    if scored.any():
        loss = loss + ranking_weight * torch.nn.functional.mse_loss(scores.float()[scored], target[scored])
    return loss


def build_model(base: str, lora_r: int, lora_alpha: int, seed: int) -> tuple[ProvenceModel, Any]:
    """The base encoder with fresh LoRA adapters and fresh heads (only those train)."""
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    path = resolve_name(base)
    encoder = AutoModel.from_pretrained(path, dtype=torch.float32)
    drop_pooling_layer(encoder)
    encoder.requires_grad_(False)
    encoder = inject_adapter_in_model(LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.05, target_modules=LORA_TARGETS), encoder)
    return ProvenceModel(encoder), AutoTokenizer.from_pretrained(path)


def export_weights(model: ProvenceModel) -> dict[str, torch.Tensor]:
    """LoRA factors (``lora.<module>.A/B``) and head weights, as saved in ``weights.safetensors``."""
    out = {}
    for name, module in model.encoder.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            out[f"lora.{name}.A"] = module.lora_A["default"].weight.detach().cpu().contiguous()
            out[f"lora.{name}.B"] = module.lora_B["default"].weight.detach().cpu().contiguous()
    return out | {k: v.detach().cpu().contiguous() for k, v in model.head_state().items()}


def train_provence(data: str | Path | list[dict[str, Any]], out: str | Path, base: str = "minilm-l6", max_length: int = 256,
                   epochs: float = 1.0, batch_size: int = 16, lr: float = 2e-4, lora_r: int = 16, lora_alpha: int = 32,
                   ranking_weight: float = 0.05, seed: int = 0, max_steps: int | None = None, device: str | None = None,
                   notes: dict[str, Any] | None = None, base_name: str | None = None) -> dict[str, Any]:
    """Train and save a checkpoint to ``out`` (``config.json`` + ``weights.safetensors``); returns the
    training record (also saved in the config) with the per-step ``losses``. ``base_name`` is what
    the checkpoint records as its base (default ``base``: pass the alias when ``base`` is a local copy)."""
    from safetensors.torch import save_file

    rows = read_rows(data) if isinstance(data, (str, Path)) else list(data)
    model, tokenizer = build_model(base, lora_r, lora_alpha, seed)
    max_length = min(max_length, getattr(model.encoder.config, "max_position_embeddings", max_length))
    examples = encode_rows(rows, tokenizer, max_length)
    device = resolve_device(device)
    model.to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    total = max_steps or max(1, math.ceil(epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, total // 20)) * max(0.0, 1 - s / total))
    rng, losses, order = random.Random(seed), [], []
    uses_types = getattr(model.encoder.config, "type_vocab_size", 0) > 0
    for _ in tqdm(range(total), desc="Provence: training", leave=False):
        if not order:
            order = list(range(len(examples)))
            rng.shuffle(order)
        picked, order = order[:batch_size], order[batch_size:]
        loss = provence_loss(model, _batch([examples[i] for i in picked], tokenizer.pad_token_id), ranking_weight, uses_types)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    record = {"rows": len(rows), "windows": len(examples), "steps": total, "batch_size": batch_size, "lr": lr, "epochs": epochs,
              "ranking_weight": ranking_weight, "seed": seed, "first_loss": losses[0], "final_loss": sum(losses[-20:]) / len(losses[-20:])}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(export_weights(model), str(out / "weights.safetensors"))
    config = {"format": FORMAT, "version": 1, "base_model": base_name or base, "max_length": max_length,
              "lora": {"r": lora_r, "alpha": lora_alpha, "scaling": lora_alpha / lora_r, "target_modules": LORA_TARGETS},
              "training": record | (notes or {})}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return record | {"losses": losses}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ragpress train provence``: a Provence pruner + reranker from JSONL rows {query, passage, sentence_labels[, sentence_spans, rerank_score]}."""
    parser.add_argument("--out", required=True, help="directory to write config.json + weights.safetensors")
    parser.add_argument("--data", help="training JSONL file (default: constructed questions over the corpus's training articles)")
    parser.add_argument("--corpus", help="a corpus file from `python -m ragpress.corpora` (default: collect the offline text)")
    parser.add_argument("--base", default="minilm-l6", help="encoder to adapt: alias, HF id or path (default minilm-l6)")
    parser.add_argument("--base-name", help="name to record for the base in the checkpoint (when --base is a local copy of it)")
    for flag, kind, default in (("--epochs", float, 1.0), ("--batch-size", int, 16), ("--lr", float, 2e-4), ("--max-length", int, 256),
                                ("--lora-r", int, 16), ("--lora-alpha", int, 32), ("--ranking-weight", float, 0.05), ("--seed", int, 0),
                                ("--max-steps", int, None), ("--device", str, None)):
        parser.add_argument(flag, type=kind, default=default, help=f"default {default}")


def run(args: argparse.Namespace) -> None:
    data, notes = args.data, {}
    if data is None:
        from ragpress.compressors.provence.data import constructed_rows, wikipedia_documents

        articles = wikipedia_documents("train", args.corpus)
        data = constructed_rows(articles, seed=args.seed, questions_per_passage=3)
        notes["data"] = (f"constructed keyword questions over the {len(articles)} training Wikipedia articles of ragpress.corpora "
                         f"(seed {args.seed}, 3 questions a passage); its held-out articles are never seen")
    options = {k: v for k, v in vars(args).items() if k not in ("out", "data", "corpus", "base_name", "command", "method")}
    record = train_provence(data, args.out, notes=notes, base_name=args.base_name, **options)
    print(f"trained {record['steps']} steps on {record['windows']} windows: loss {record['first_loss']:.4f} -> {record['final_loss']:.4f}; saved to {args.out}")
