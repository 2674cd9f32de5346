"""Training CompLLM's adapters by distillation (Berton et al., 2025, arXiv:2509.19228, Sec. 3.2, Fig. 3).

The objective: the frozen decoder given the context's concept embeddings (student) should behave
like the same decoder given the context's token embeddings (teacher) on the answer. The loss compares
the hidden states of every layer at the answer's positions, each layer scaled by the teacher's spread
there, with a smooth-L1 penalty; the outputs at the other positions are ignored (Fig. 3 caption). Only
the LoRA and the linear layer learn.

Data (our choice; the paper trains on Q&A sets that are not available offline): continuation tasks
built from real text that ships with the environment. A window of the text is the context, the
question asks to continue it, and the next ``answer_tokens`` tokens of the text are the answer, in
exactly the prompt the generator uses (:func:`ragpress.core.prompt.chat_messages`,
the soft context in the sources' place). Documents come from :mod:`ragpress.corpora`, whose held-out
rule keeps one in ten apart, so the quality benchmark scores essays and articles never seen in training.

Deviations: the position that predicts the first answer token (the prompt's last) is scored with the
answer's positions; the answers are the real text, not the LLM's own generation (Fig. 3 allows either).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ragpress import corpora
from ragpress.compressors.compllm.model import (
    PAPER_RATIO,
    PAPER_SEGMENT_TOKENS,
    AdapterConfig,
    CompLLMEncoder,
    save_checkpoint,
    split_segments,
)
from ragpress.core.lm import CausalLM
from ragpress.core.loaders import load_causal_lm
from ragpress.core.prompt import soft_prompt_ids

CONTINUE = "Continue the text of the sources from where it stops."


@dataclasses.dataclass(frozen=True)
class Window:
    """A continuation task: ``context`` text, then the ``answer`` token ids that follow it."""

    context: str
    answer: tuple[int, ...]
    source: str = ""


class Windows:
    """Samples continuation windows (``context_tokens`` tokens, then ``answer_tokens``) from documents."""

    def __init__(self, docs: Sequence[dict[str, str]], tokenizer: Any, context_tokens: tuple[int, int], answer_tokens: int):
        self.context_tokens, self.answer_tokens = context_tokens, answer_tokens
        self.docs = []
        for doc in docs:
            enc = tokenizer(doc["text"], add_special_tokens=False, return_offsets_mapping=True)
            if len(enc["input_ids"]) > context_tokens[1] + answer_tokens + 1:
                self.docs.append((doc, enc["input_ids"], [s for s, _ in enc["offset_mapping"]]))
        if not self.docs:
            raise ValueError(f"No document is longer than {context_tokens[1] + answer_tokens} tokens; lower context_tokens.")

    def window(self, index: int, start: int, length: int) -> Window:
        doc, ids, starts = self.docs[index]
        end = start + length
        return Window(doc["text"][starts[start] : starts[end]], tuple(ids[end : end + self.answer_tokens]), doc["id"])

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[Window]:
        weights = np.array([len(ids) for _, ids, _ in self.docs], dtype=float)
        picks = rng.choice(len(self.docs), size=batch_size, p=weights / weights.sum())
        out = []
        for index in picks:
            length = int(rng.integers(self.context_tokens[0], self.context_tokens[1] + 1))
            start = int(rng.integers(0, len(self.docs[index][1]) - length - self.answer_tokens))
            out.append(self.window(index, start, length))
        return out

    def spread(self, count: int) -> list[Window]:
        """``count`` fixed windows, round-robin over the documents, evenly spaced inside each."""
        length = self.context_tokens[1]
        per_doc = math.ceil(count / len(self.docs))
        order = sorted(range(len(self.docs)), key=lambda i: hashlib.sha1(self.docs[i][0]["title"].encode()).hexdigest())
        out = []
        for k in range(per_doc):
            for index in order:
                ids = self.docs[index][1]
                room = len(ids) - length - self.answer_tokens
                out.append(self.window(index, room * (2 * k + 1) // (2 * per_doc), length))
        return out[:count]


# ---------------------------------------------------------------- decoder passes
def answer_pass(
    model: Any, head: torch.Tensor, tail: torch.Tensor, contexts: Sequence[torch.Tensor], answers: torch.Tensor, states: bool
) -> tuple[list[torch.Tensor] | None, torch.Tensor]:
    """One decoder pass over ``[head, context_i, tail, answer_i]`` (right-padded batch).

    Returns the hidden states of every layer at the answer's positions (the prompt's last position and
    each answer token: ``[B, A + 1, hidden]`` per layer) when ``states``, and the logits ``[B, A, vocab]``
    that predict the answer tokens."""
    embed = model.get_input_embeddings()
    device, dtype = embed.weight.device, embed.weight.dtype
    head_e, tail_e, answer_e = embed(head.to(device)), embed(tail.to(device)), embed(answers.to(device))
    rows = [torch.cat([head_e, c.to(device, dtype), tail_e, a]) for c, a in zip(contexts, answer_e)]
    width = max(len(r) for r in rows)
    batch = torch.zeros(len(rows), width, head_e.shape[-1], device=device, dtype=dtype)
    mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
    for i, r in enumerate(rows):
        batch[i, : len(r)], mask[i, : len(r)] = r, 1
    prompt = torch.tensor([len(head) + len(c) + len(tail) for c in contexts], device=device)
    positions = prompt[:, None] - 1 + torch.arange(answers.shape[1] + 1, device=device)[None]
    out = model.get_decoder()(inputs_embeds=batch, attention_mask=mask, output_hidden_states=states)
    pick = torch.arange(len(rows), device=device)[:, None]
    logits = model.get_output_embeddings()(out.last_hidden_state[pick, positions[:, :-1]]).float()
    layers = [h[pick, positions] for h in out.hidden_states[1:]] if states else None
    return layers, logits


def distillation_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Smooth-L1 between student and teacher hidden states of each layer at the answer positions,
    each layer divided by the teacher's standard deviation there, averaged over layers (Sec. 3.2)."""
    losses = []
    for s, t in zip(student, teacher):
        scale = t.float().std().clamp_min(1e-6)
        losses.append(F.smooth_l1_loss(s.float() / scale, t.float() / scale))
    return torch.stack(losses).mean()


def answer_scores(logits: torch.Tensor, answers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean next-token loss (nats) and top-1 accuracy of each row's answer tokens."""
    answers = answers.to(logits.device)
    loss = F.cross_entropy(logits.transpose(1, 2), answers, reduction="none").mean(1)
    return loss, (logits.argmax(-1) == answers).float().mean(1)


class Distiller:
    """Teacher (full context) and student (concept embeddings) passes of one frozen decoder."""

    def __init__(self, lm: CausalLM, encoder: CompLLMEncoder, segment_tokens: int):
        self.lm, self.encoder, self.segment_tokens = lm, encoder, segment_tokens
        self.head, self.tail = soft_prompt_ids(lm, CONTINUE)

    def token_embeddings(self, windows: Sequence[Window]) -> list[torch.Tensor]:
        embed = self.encoder.lm.get_input_embeddings()
        ids = self.lm.tokenizer([w.context for w in windows], add_special_tokens=False)["input_ids"]
        return [embed(torch.tensor(i, device=self.encoder.lm.device)) for i in ids]

    def concept_embeddings(self, windows: Sequence[Window]) -> list[torch.Tensor]:
        """CEs of each window's context, segmented exactly as :class:`CompLLM` does at inference."""
        texts, owners = [], []
        for k, w in enumerate(windows):
            spans = split_segments(w.context, self.lm.tokenizer, self.segment_tokens)
            texts += [w.context[s:e] for s, e in spans]
            owners += [k] * len(spans)
        rows = self.encoder(self.lm.tokenizer(texts, add_special_tokens=False)["input_ids"])
        return [torch.cat([r for r, o in zip(rows, owners) if o == k]) for k in range(len(windows))]

    def loss(self, windows: Sequence[Window]) -> tuple[torch.Tensor, dict[str, float]]:
        answers = torch.tensor([w.answer for w in windows])
        student_contexts = self.concept_embeddings(windows)
        with self.encoder.decoding() as decoder:
            with torch.no_grad():
                teacher, teacher_logits = answer_pass(decoder, self.head, self.tail, self.token_embeddings(windows), answers, True)
            student, student_logits = answer_pass(decoder, self.head, self.tail, student_contexts, answers, True)
        loss = distillation_loss(student, teacher)
        return loss, {
            "distill": float(loss.detach()),
            "student_nll": float(answer_scores(student_logits.detach(), answers)[0].mean()),
            "teacher_nll": float(answer_scores(teacher_logits, answers)[0].mean()),
        }


# ---------------------------------------------------------------- training loop
@dataclasses.dataclass
class TrainSettings:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 5e-4
    warmup: int = 50
    context_tokens: tuple[int, int] = (100, 400)
    answer_tokens: int = 32
    ratio: float = PAPER_RATIO
    segment_tokens: int = PAPER_SEGMENT_TOKENS
    adapters: AdapterConfig = dataclasses.field(default_factory=AdapterConfig)
    max_seconds: float | None = None
    seed: int = 0
    log_every: int = 50


def build_encoder(lm: CausalLM, settings: TrainSettings) -> CompLLMEncoder:
    """A fresh encoder on a private copy of the decoder's weights (the cached copy stays clean)."""
    return CompLLMEncoder(copy.deepcopy(lm.model), settings.ratio, lm.tokenizer.eos_token_id, settings.adapters, settings.seed)


def train_steps(distiller: Distiller, windows: Windows, settings: TrainSettings) -> Iterator[dict[str, float]]:
    """AdamW on the adapters with linear warm-up and cosine decay over ``steps`` or ``max_seconds``,
    whichever runs out first; yields each step's numbers."""
    params = [p for p in distiller.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    rng = np.random.default_rng(settings.seed)
    distiller.encoder.train()
    started = time.perf_counter()
    for step in range(settings.steps):
        progress = step / settings.steps
        if settings.max_seconds:
            progress = max(progress, (time.perf_counter() - started) / settings.max_seconds)
        if progress >= 1:
            break
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * min(1.0, (step + 1) / settings.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        loss, stats = distiller.loss(windows.sample(settings.batch_size, rng))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        yield {"step": step + 1, "lr": optimizer.param_groups[0]["lr"], **stats}
    distiller.encoder.eval()


def train(decoder: str, out: str | Path, settings: TrainSettings | None = None, corpus: str | Path | None = None, device: str | None = None) -> dict:
    """Train CompLLM adapters for ``decoder`` on the train split of the corpus and save a checkpoint
    to ``out`` (adapters.safetensors + config.json). Returns the training log."""
    settings = settings or TrainSettings()
    torch.manual_seed(settings.seed)
    lm = load_causal_lm(decoder, device)
    docs = corpora.load(corpus)
    train_docs = [d for d in docs if d["split"] == "train"]
    windows = Windows(train_docs, lm.tokenizer, settings.context_tokens, settings.answer_tokens)
    distiller = Distiller(lm, build_encoder(lm, settings), settings.segment_tokens)
    started, log = time.perf_counter(), []
    for stats in train_steps(distiller, windows, settings):
        log.append(stats)
        if stats["step"] % settings.log_every == 0 or stats["step"] == 1:
            recent = log[-settings.log_every :]
            means = {k: sum(r[k] for r in recent) / len(recent) for k in ("distill", "student_nll", "teacher_nll")}
            print(f"step {stats['step']:>5}  distill {means['distill']:.4f}  answer NLL student {means['student_nll']:.3f} "
                  f"teacher {means['teacher_nll']:.3f}  {time.perf_counter() - started:.0f}s", flush=True)
    sources = sorted({d["source"] for d in train_docs})
    info = {
        "data": {s: sum(1 for d in train_docs if d["source"] == s) for s in sources},
        "data_note": "continuation tasks (context window -> next tokens) from the train split; one document in "
        f"{corpora.HELD_OUT_ONE_IN} (ragpress.corpora.split_of) held apart",
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "adapters"},
        "steps_done": log[-1]["step"],
        "seconds": round(time.perf_counter() - started, 1),
        "final": {k: sum(r[k] for r in log[-50:]) / len(log[-50:]) for k in ("distill", "student_nll", "teacher_nll")},
        "device": str(lm.device),
    }
    save_checkpoint(distiller.encoder, out, decoder, settings.segment_tokens, info)
    return {"log": log, **info}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ragpress train compllm``: adapters by distillation on offline text (arXiv:2509.19228)."""
    parser.add_argument("--decoder", default="smollm2-135m", help="decoder LM: HF id, path or alias (default smollm2-135m)")
    parser.add_argument("--out", required=True, help="checkpoint directory to write (adapters.safetensors + config.json)")
    parser.add_argument("--corpus", help="a corpus file from `python -m ragpress.corpora` (default: collect the offline text)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--ratio", type=float, default=2.0, help="token embeddings per concept embedding (paper: 2)")
    parser.add_argument("--max-seconds", type=float, help="stop after this many seconds of training")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when present)")


def run(args: argparse.Namespace) -> None:
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, ratio=args.ratio, max_seconds=args.max_seconds)
    result = train(args.decoder, args.out, settings, corpus=args.corpus, device=args.device)
    print(f"saved {args.out} after {result['steps_done']} steps in {result['seconds']} s; last 50 steps: {result['final']}")
