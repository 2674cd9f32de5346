"""Provence: query-aware sentence pruning and reranking from one cross-encoder pass.

Chirkova et al., "Provence: efficient and robust context pruning for retrieval-augmented
generation" (arXiv 2501.16214, ICLR 2025). Steps, per retrieved chunk:

1. Input (Sec. 3; released ``process()``): ``[CLS] query [SEP] passage [SEP]``, the query lower-cased
   with punctuation removed as the released code does. The chunk is tokenised once; a chunk longer
   than the encoder window is split at sentence boundaries into windows that each repeat the query
   (the released code splits long contexts into blocks the same way); a single sentence longer than
   a window is cut across windows and its token probabilities are pooled. Nothing is truncated.
2. One forward pass per window gives P(keep) for every passage token (token head, softmax index 1)
   and a rerank logit (rerank head). A chunk's rerank score is its best window's (ours: the paper
   scores one 512-token passage at a time).
3. Sentence rounding (Sec. 3, "sentence rounding"; released ``sentence_rounding``): a sentence
   (spaCy, :func:`~ragpress.chunkers.sentence.split_sentences`) is kept when the mean P(keep) of its
   tokens exceeds ``threshold`` (paper and model card default 0.1; 0.5 prunes harder). Output is
   never cut inside a sentence. ``always_select_title`` keeps a chunk's first sentence whenever any
   other sentence is kept (released option, for passages that start with a title).
4. Output: consecutive kept sentences merge into one piece, an exact span of the source document;
   every piece carries its chunk's rerank score. Pieces follow the input chunk order unless
   ``rerank`` is set (then best chunk first); ``top_k`` keeps only the best-scored chunks (the
   "Provence as reranker" setting). Per-chunk sentence probabilities are in ``metadata["chunks"]``.

Empty chunks yield no pieces and a rerank score of ``None``. The released model and ours are
trained on English; another language runs the same way, with no guarantee of quality.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import string
from typing import Any, ClassVar

import torch

from ragpress.chunkers.sentence import split_sentences
from ragpress.compressors.base import Compressor
from ragpress.compressors.provence.model import load_provence
from ragpress.core.bundled import SPACY_MODEL
from ragpress.core.types import Chunk, Context

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize_query(query: str) -> str:
    """The released code's query normalisation: lower case, ASCII punctuation removed, single spaces."""
    return " ".join(_PUNCTUATION.sub("", query.lower()).split())


def sentence_rounding(token_probs: torch.Tensor, token_sentence: list[int], n_sentences: int, threshold: float,
                      always_select_title: bool = False) -> tuple[list[float], list[bool]]:
    """Mean P(keep) of each sentence's tokens and the keep decision (mean > threshold)."""
    sums = torch.zeros(n_sentences).index_add_(0, torch.tensor(token_sentence, dtype=torch.long), token_probs.float())
    counts = torch.bincount(torch.tensor(token_sentence, dtype=torch.long), minlength=n_sentences).clamp(min=1)
    means = (sums / counts).tolist()
    keep = [m > threshold for m in means]
    if always_select_title and any(keep[1:]):
        keep[0] = True
    return means, keep


def token_sentences(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """Index of the sentence each token starts in (tokens before the first sentence go to it)."""
    starts = [s for s, _ in spans]
    return [max(0, bisect.bisect_right(starts, a) - 1) for a, _ in offsets]


def windows(owner: list[int], budget: int) -> list[tuple[int, int]]:
    """Token ranges ``[a, b)`` of at most ``budget`` tokens, cut at sentence boundaries (``owner``:
    each token's sentence); a sentence longer than ``budget`` is cut into budget-sized parts."""
    parts = [(a + i, min(b, a + i + budget)) for a, b in _runs(owner) for i in range(0, b - a, budget)]
    out: list[tuple[int, int]] = []
    for a, b in parts:
        if out and b - out[-1][0] <= budget:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@dataclasses.dataclass
class Provence(Compressor):
    """Settings: ``model`` ("provence-minilm", shipped; any directory or hub id of a ragpress or
    released Provence checkpoint), ``threshold`` (0.1, paper default), ``always_select_title``,
    ``rerank`` (order pieces by chunk score), ``top_k`` (keep only the k best chunks),
    ``max_length`` (encoder window; default from the checkpoint), ``batch_size``, ``device``,
    ``tokenizer`` (counts the tokens kept: the generator's, not the encoder's)."""

    method: ClassVar[str] = "provence"
    model: str = "provence-minilm"
    threshold: float = 0.1
    always_select_title: bool = False
    rerank: bool = False
    top_k: int | None = None
    max_length: int | None = None
    batch_size: int = 16
    device: str | None = None
    spacy_model: str = SPACY_MODEL
    tokenizer: str = "smollm2-135m"

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is a probability in [0, 1], got {self.threshold!r} (paper default 0.1).")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be a positive number of chunks or None, got {self.top_k!r}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size!r}.")

    def load(self):
        return load_provence(self.model, self.device)

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        results = self.score(query, [c.text for c in chunks])
        ranked = sorted(range(len(chunks)), key=lambda i: -results[i]["rerank_score"] if results[i]["sentences"] else float("inf"))
        chosen = set(ranked[: self.top_k] if self.top_k else ranked)
        order = ranked if self.rerank else range(len(chunks))
        pieces = [p for i in order if i in chosen for p in self._pieces(chunks[i], i, results[i])]
        return Context(
            query=query,
            pieces=tuple(pieces),
            tokens_before=sum(self.count_tokens(c.text) for c in chunks),
            tokens_after=sum(p.token_count for p in pieces),
            metadata={"model": self.model, "threshold": self.threshold,
                      "chunks": [r | {"index": i, "selected": i in chosen} for i, r in enumerate(results)]},
        )

    def _pieces(self, chunk: Chunk, index: int, result: dict[str, Any]) -> list[Chunk]:
        spans: list[list[int]] = []
        for s in result["sentences"]:
            if not s["kept"]:
                continue
            if spans and spans[-1][2] == s["i"] - 1:
                spans[-1][1:] = [s["end"], s["i"]]
            else:
                spans.append([s["start"], s["end"], s["i"]])
        return [
            Chunk(doc_id=chunk.doc_id, start=chunk.start + a, end=chunk.start + b, text=chunk.text[a:b],
                  score=result["rerank_score"], token_count=self.count_tokens(chunk.text[a:b]),
                  metadata={"chunk_index": index, "rerank_score": result["rerank_score"]})
            for a, b, _ in spans
        ]

    @torch.inference_mode()
    def score(self, query: str, passages: list[str]) -> list[dict[str, Any]]:
        """Per passage: ``rerank_score`` (None when blank), ``windows`` and ``sentences`` (each with
        char ``start``/``end`` in the passage, mean ``prob`` of keep and ``kept``)."""
        model, tokenizer, config = self.load()
        limit = self.max_length or config.get("max_length") or getattr(model.encoder.config, "max_position_embeddings", 512)
        q_ids = tokenizer(normalize_query(query), add_special_tokens=False)["input_ids"]
        budget = limit - len(q_ids) - 3
        if budget < 8:
            raise ValueError(f"The query takes {len(q_ids)} of the encoder's {limit} tokens, leaving no room for the passage; shorten the query.")
        encoded = tokenizer(list(passages), add_special_tokens=False, return_offsets_mapping=True, verbose=False) if passages else {"input_ids": [], "offset_mapping": []}
        plans = []
        for p, (text, ids, offsets) in enumerate(zip(passages, encoded["input_ids"], encoded["offset_mapping"])):
            spans = split_sentences(text, self.spacy_model)
            owner = token_sentences(offsets, spans)
            plans.append((spans, ids, owner, windows(owner, budget)))
        rows = [(p, a, b) for p, plan in enumerate(plans) for a, b in plan[3]]
        probs = [torch.zeros(len(plan[1])) for plan in plans]
        rerank: list[list[float]] = [[] for _ in plans]
        for start in range(0, len(rows), self.batch_size):
            group = rows[start : start + self.batch_size]
            keep, scores = self._forward(model, tokenizer, q_ids, [plans[p][1][a:b] for p, a, b in group])
            for (p, a, b), k, s in zip(group, keep, scores):
                probs[p][a:b] = k
                rerank[p].append(s)
        out = []
        for (spans, ids, owner, wins), prob, scores in zip(plans, probs, rerank):
            means, kept = sentence_rounding(prob, owner, len(spans), self.threshold, self.always_select_title) if ids else ([], [])
            sentences = [{"i": i, "start": s, "end": e, "prob": m, "kept": k} for i, ((s, e), m, k) in enumerate(zip(spans, means, kept))]
            out.append({"rerank_score": max(scores) if scores else None, "windows": len(wins), "sentences": sentences})
        return out

    def _forward(self, model, tokenizer, q_ids: list[int], contexts: list[list[int]]) -> tuple[list[torch.Tensor], list[float]]:
        """One batched pass over ``[CLS] q [SEP] context [SEP]`` rows: P(keep) of each context token, rerank logits."""
        head = [tokenizer.cls_token_id, *q_ids, tokenizer.sep_token_id]
        width = len(head) + max(len(c) for c in contexts) + 1
        ids = torch.full((len(contexts), width), tokenizer.pad_token_id, dtype=torch.long)
        mask, types = torch.zeros_like(ids), torch.zeros_like(ids)
        for r, c in enumerate(contexts):
            row = head + c + [tokenizer.sep_token_id]
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
            types[r, len(head) : len(row)] = 1
        device = next(model.parameters()).device
        logits, scores = model(ids.to(device), mask.to(device), types.to(device) if _uses_types(model) else None)
        keep = logits.float().softmax(-1)[..., 1].cpu()
        return [keep[r, len(head) : len(head) + len(c)] for r, c in enumerate(contexts)], scores.float().cpu().tolist()


def _runs(owner: list[int]) -> list[tuple[int, int]]:
    """Token ranges ``[a, b)`` of equal consecutive values of ``owner`` (one per sentence)."""
    runs: list[list[int]] = []
    for t, sentence in enumerate(owner):
        if runs and owner[runs[-1][0]] == sentence:
            runs[-1][1] = t + 1
        else:
            runs.append([t, t + 1])
    return [(a, b) for a, b in runs]


def _uses_types(model) -> bool:
    return getattr(model.encoder.config, "type_vocab_size", 0) > 0
