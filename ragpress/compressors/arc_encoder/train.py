"""Training for :mod:`ragpress.compressors.arc_encoder` (Pilchen et al., ARC-Encoder, §3.3).

Pretraining alternates two tasks on plain text, the decoder frozen (Fig. 2): reconstruction (the
compressed text, then <Rec>, then the decoder is teacher-forced to write the text back) and
continuation (the compressed text, then <Cont>, then the text that follows); 20 % reconstruction,
the best share in Tab. 4. Fine-tuning then trains on the generator's own chat prompt (§3.3: instruct
decoders need their template) with the loss on the answer only: continue the compressed text, or
name the compressed Wikipedia article. Each step samples one decoder uniformly and updates its
projector and the shared encoder (§3.3, multi-decoder training).

Deviations: offline text only (:mod:`ragpress.corpora`: Paul Graham essays, gensim's Wikipedia
sample, pydoc topics, CPython docstrings; a few million tokens instead of 2.6B of Common Crawl); no text prefix
before the compressed part in continuation (App. C.1 finds it brings nothing for one decoder);
pretraining at ratio 8 and fine-tuning alternating 4 and 8 per step, so one checkpoint serves both
(the paper fine-tunes one model per ratio, from an 8x pretraining as here, Fig. 5).
"""

from __future__ import annotations

import argparse
import math
import random
import time

import torch

from ragpress import corpora
from ragpress.compressors.arc_encoder.model import CONT, REC, ArcModel
from ragpress.core.lm import CausalLM
from ragpress.core.loaders import load_causal_lm, load_tokenizer
from ragpress.core.prompt import soft_prompt_ids

CONTINUE = "Continue the text of the sources."
TITLE = "What is the title of the Wikipedia article in the sources?"
WARMUP_STEPS, MIN_STEPS = 20, 20  # per training stage


def decoder_nll(lm: CausalLM, prefixes: list[list[torch.Tensor]], targets: list[list[int]]) -> torch.Tensor:
    """Summed next-token NLL of each target given its prefix (a list of input-embedding pieces),
    one right-padded batch through the frozen decoder; logits only at target positions."""
    if not all(targets):
        raise ValueError("Every target needs at least one token.")
    rows = [torch.cat([*(p.to(lm.device, lm.model.dtype) for p in parts), lm.embed(torch.tensor(t, dtype=torch.long))]) for parts, t in zip(prefixes, targets)]
    width = max(len(r) for r in rows)
    embeds = torch.zeros(len(rows), width, rows[0].shape[1], device=lm.device, dtype=lm.model.dtype)
    mask = torch.zeros(len(rows), width, dtype=torch.long, device=lm.device)
    picks, labels, owner = [], [], []
    for b, (row, target) in enumerate(zip(rows, targets)):
        embeds[b, : len(row)], mask[b, : len(row)] = row.to(embeds.dtype), 1
        start = len(row) - len(target)
        picks.extend((b, p) for p in range(start - 1, len(row) - 1))
        labels.extend(target)
        owner.extend([b] * len(target))
    hidden = lm.model.base_model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    index = torch.tensor(picks, device=lm.device)
    logits = lm.model.get_output_embeddings()(hidden[index[:, 0], index[:, 1]]).float()
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(labels, device=lm.device), reduction="none")
    return torch.zeros(len(rows), device=lm.device).index_add(0, torch.tensor(owner, device=lm.device), nll)


class Batches:
    """Random windows of the training documents, tokenised once with the encoder's tokenizer."""

    def __init__(self, docs: list[dict[str, str]], encoder: str, seed: int):
        self.tokenizer = load_tokenizer(encoder)
        self.docs = [(d, self.tokenizer(d["text"], add_special_tokens=False)["input_ids"]) for d in docs if d["split"] == "train"]
        self.wiki = [(d, ids) for d, ids in self.docs if d["source"] == "wikipedia"]
        self.rng = random.Random(seed)

    def windows(self, size: int, after: int, count: int) -> list[tuple[list[int], list[int]]]:
        """``count`` pairs (``size`` tokens to compress, up to ``after`` tokens that follow)."""
        out = []
        long_enough = [(d, ids) for d, ids in self.docs if len(ids) > size + after]
        for _, ids in self.rng.choices(long_enough, [len(ids) for _, ids in long_enough], k=count):
            start = self.rng.randrange(max(1, len(ids) - size - after))
            out.append((ids[start : start + size], ids[start + size : start + size + after]))
        return out


def prompt_embeds(lm: CausalLM, question: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The generator's chat prompt for ``question`` over a soft context, embedded before and after it."""
    head, tail = soft_prompt_ids(lm, question)
    return lm.embed(head), lm.embed(tail)


def step_loss(model: ArcModel, lm: CausalLM, decoder: str, batches: Batches, stage: str, ratio: int, size: int, count: int, rng: random.Random) -> torch.Tensor:
    """Mean token NLL of one batch of the ``stage`` ("pretrain" or "finetune") task mix."""
    to_decoder = load_tokenizer(decoder)
    decode = batches.tokenizer.decode
    bos = [lm.tokenizer.bos_token_id] if lm.tokenizer.bos_token_id is not None else []
    task = REC if stage == "pretrain" and rng.random() < 0.2 else CONT
    if stage == "finetune" and batches.wiki and rng.random() < 0.25:
        pairs = [(ids[:size], d["title"]) for d, ids in rng.choices(batches.wiki, k=count)]
        question, answers = TITLE, [title for _, title in pairs]
        contexts = [ids for ids, _ in pairs]
    else:
        pairs = batches.windows(size, 64 if stage == "finetune" else 128, count)
        contexts = [ctx for ctx, _ in pairs]
        answers = [decode(ctx if task == REC else rest) for ctx, rest in pairs]
        question = CONTINUE
    soft = [model.project(p, decoder, task) for p in model.encode(contexts, ratio)]
    targets = [to_decoder(a, add_special_tokens=False)["input_ids"] for a in answers]
    if stage == "pretrain":  # Fig. 2: [BOS] compressed <Rec>/<Cont> -> text
        prefixes = [[lm.embed(torch.tensor(bos)), s] for s in soft]
    else:  # the generator's prompt with the soft rows in the sources' place; the answer ends the turn
        head, tail = prompt_embeds(lm, question)
        prefixes = [[head, s, tail] for s in soft]
        targets = [t + [lm.tokenizer.eos_token_id] for t in targets]
    return decoder_nll(lm, prefixes, targets).sum() / sum(map(len, targets))


def train(
    decoders: list[str], out: str, encoder: str = "smollm2-135m", init: str | None = None, freeze_encoder: bool = False,
    corpus: str | None = None, seconds: float = 300.0, finetune_share: float = 0.25, batch_size: int = 32,
    max_tokens: int = 256, lr: float = 3e-4, seed: int = 0, device: str | None = None,
) -> ArcModel:
    """Pretrain then fine-tune an ARC-Encoder for ``decoders`` within ``seconds`` and save it to ``out``.
    ``init`` starts from a checkpoint; with ``freeze_encoder`` only the projectors and special tokens
    train (§4.2, adaptation to new decoders, Fig. 3)."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    rng = random.Random(seed)
    lms = {name: load_causal_lm(name, device) for name in decoders}
    if init:
        model = ArcModel.load(init)
        model.add_decoders({name: lm.model.config.get_text_config().hidden_size for name, lm in lms.items()})
    else:
        model = ArcModel.create(encoder, {name: lm.model.config.get_text_config().hidden_size for name, lm in lms.items()})
    lm_device = next(iter(lms.values())).device
    model.to(lm_device).train()
    for lm in lms.values():
        lm.model.requires_grad_(False)
    batches = Batches(corpora.load(corpus), model.config["encoder"], seed)
    groups = [  # App. C.2: the projector learns faster than the encoder
        {"params": [p for n, p in model.named_parameters() if "lora_" in n and not freeze_encoder], "lr": lr},
        {"params": [p for n, p in model.named_parameters() if n.startswith(("projectors.", "special."))], "lr": 3 * lr},
    ]
    for name, p in model.named_parameters():
        p.requires_grad_(any(p is q for g in groups for q in g["params"]))
    autocast = torch.autocast("cuda", torch.bfloat16) if lm_device.type == "cuda" else torch.autocast("cpu", enabled=False)
    history, started = {"pretrain": [], "finetune": []}, time.perf_counter()
    for stage, budget, ratios in (("pretrain", seconds * (1 - finetune_share), (8,)), ("finetune", seconds * finetune_share, (4, 8))):
        optimizer = torch.optim.AdamW(groups, weight_decay=0.1 if stage == "pretrain" else 0.05, betas=(0.9, 0.95))
        peaks = [g["lr"] * (1 if stage == "pretrain" else 0.3) for g in optimizer.param_groups]
        stage_start, step = time.perf_counter(), 0
        bar = tqdm(desc=f"ARC {stage}", unit="step")
        # one-cycle schedule (Tab. 10) on the clock: warm-up over the first steps, cosine decay over the
        # stage's time budget, so the budget is spent whatever the step time (a shared GPU, say); a budget
        # too short for MIN_STEPS decays over those steps instead
        while (spent := (time.perf_counter() - stage_start) / budget) < 1 or step < MIN_STEPS:
            progress = min(spent, step / MIN_STEPS)
            scale = min(1.0, (step + 1) / WARMUP_STEPS) * 0.5 * (1 + math.cos(math.pi * progress))
            for group, peak in zip(optimizer.param_groups, peaks):
                group["lr"] = peak * scale
            decoder = rng.choice(decoders)  # §3.3: one decoder per step, sampled uniformly
            size = rng.randint(max(16, max_tokens // 8), max_tokens)
            with autocast:
                loss = step_loss(model, lms[decoder], decoder, batches, stage, rng.choice(ratios), size, batch_size, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            optimizer.step()
            history[stage].append(round(loss.item(), 4))
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            step += 1
            if step % 50 == 0:  # a plain line for logs, where the bar is off
                print(f"ARC {stage} step {step}  loss {sum(history[stage][-50:]) / 50:.3f}  {time.perf_counter() - stage_start:.0f}s", flush=True)
        bar.close()
        curve = history[stage]
        print(f"ARC {stage}: {step} steps in {time.perf_counter() - stage_start:.0f} s, loss {sum(curve[:20]) / 20:.3f} (first 20) -> {sum(curve[-20:]) / 20:.3f} (last 20)", flush=True)
    model.config["trained_ratios"] = sorted(set(model.config["trained_ratios"]) | {4, 8})
    model.config["training"] = {
        "decoders": decoders, "seconds": round(time.perf_counter() - started, 1), "batch_size": batch_size, "max_tokens": max_tokens,
        "lr": lr, "seed": seed, "init": init, "freeze_encoder": freeze_encoder, "device": str(lm_device),
        "corpus": sorted({d["source"] for d, _ in batches.docs}),
        "train_documents": len(batches.docs),
        "steps": {k: len(v) for k, v in history.items()},
        "loss_first_last_50": {k: [round(sum(v[:50]) / max(1, len(v[:50])), 3), round(sum(v[-50:]) / max(1, len(v[-50:])), 3)] for k, v in history.items()},
    }
    model.eval().save(out)
    return model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ragpress train arc-encoder``: pretrain and fine-tune an ARC-Encoder for frozen decoders (offline text)."""
    parser.add_argument("--decoder", action="append", required=True, help="decoder to train a projector for (repeat for several)")
    parser.add_argument("--out", required=True, help="checkpoint directory to write")
    parser.add_argument("--encoder", default="smollm2-135m", help="LLM whose first layers become the encoder")
    parser.add_argument("--init", help="start from this checkpoint (adds projectors for new decoders)")
    parser.add_argument("--freeze-encoder", action="store_true", help="train only projectors and special tokens")
    parser.add_argument("--corpus", help="a corpus file from `python -m ragpress.corpora` (default: collect the offline text)")
    parser.add_argument("--seconds", type=float, default=300.0, help="training time budget (default 300)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when present)")


def run(args: argparse.Namespace) -> None:
    train(args.decoder, args.out, encoder=args.encoder, init=args.init, freeze_encoder=args.freeze_encoder,
          corpus=args.corpus, seconds=args.seconds, batch_size=args.batch_size, seed=args.seed, device=args.device)
