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
from ragpress.core.device import default_batch_size
from ragpress.core.types import Chunk, Context

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")
ENCODER_ITEM_BYTES = 2**26  # one encoder window (512 tokens) in a batch: activations and attention, generously


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
    ``max_length`` (encoder window; default from the checkpoint), ``batch_size``, ``device``, ``dtype``,
    ``tokenizer`` (counts the tokens kept: the generator's, not the encoder's)."""

    method: ClassVar[str] = "provence"
    model: str = "provence-minilm"
    threshold: float = 0.1
    always_select_title: bool = False
    rerank: bool = False
    top_k: int | None = None
    max_length: int | None = None
    batch_size: int | None = None  # encoder windows per forward; None: 16 on the CPU, more on a GPU with room
    device: str | None = None
    dtype: str | None = None  # default: bfloat16 on GPU, float32 on CPU
    spacy_model: str = SPACY_MODEL
    tokenizer: str = "smollm2-135m"

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is a probability in [0, 1], got {self.threshold!r} (paper default 0.1).")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be a positive number of chunks or None, got {self.top_k!r}.")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size!r}.")

    def load(self):
        return load_provence(self.model, self.device, self.dtype)

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        return self.compress_batch([query], [chunks])[0]

    def compress_batch(self, queries: list[str], chunks: list[list[Chunk]]) -> list[Context]:
        """Every query's chunks scored in one :meth:`score_batch` (windows of all queries packed
        into the same encoder batches), then pruned per query."""
        scored = self.score_batch(queries, [[c.text for c in group] for group in chunks])
        return [self._context(q, group, results) for q, group, results in zip(queries, chunks, scored)]

    def _context(self, query: str, chunks: list[Chunk], results: list[dict[str, Any]]) -> Context:
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

    def score(self, query: str, passages: list[str]) -> list[dict[str, Any]]:
        """Per passage: ``rerank_score`` (None when blank), ``windows`` and ``sentences`` (each with
        char ``start``/``end`` in the passage, mean ``prob`` of keep and ``kept``)."""
        return self.score_batch([query], [passages])[0]

    @torch.inference_mode()
    def score_batch(self, queries: list[str], passages: list[list[str]]) -> list[list[dict[str, Any]]]:
        """:meth:`score` for many queries at once: a passage retrieved for several queries is split
        into sentences once, and the windows of every (query, passage) pair go through the encoder
        together, sorted by length into batches of ``batch_size`` (None: sized to the device)."""
        model, tokenizer, config = self.load()
        limit = self.max_length or config.get("max_length") or getattr(model.encoder.config, "max_position_embeddings", 512)
        heads = [tokenizer(normalize_query(q), add_special_tokens=False)["input_ids"] for q in queries]
        for q_ids in heads:
            if limit - len(q_ids) - 3 < 8:
                raise ValueError(f"The query takes {len(q_ids)} of the encoder's {limit} tokens, leaving no room for the passage; shorten the query.")
        texts = list(dict.fromkeys(t for group in passages for t in group))
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False) if texts else {"input_ids": [], "offset_mapping": []}
        parsed = {}
        for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"]):
            spans = split_sentences(text, self.spacy_model)
            parsed[text] = (spans, ids, token_sentences(offsets, spans))
        plans = [(q, parsed[t], windows(parsed[t][2], limit - len(heads[q]) - 3)) for q, group in enumerate(passages) for t in group]
        rows = sorted(((p, a, b) for p, (q, _, wins) in enumerate(plans) for a, b in wins), key=lambda r: len(heads[plans[r[0]][0]]) + r[2] - r[1])
        probs = [torch.zeros(len(ids)) for _, (_, ids, _), _ in plans]
        rerank: list[list[float]] = [[] for _ in plans]
        size = self.batch_size or default_batch_size(next(model.parameters()).device, 16, ENCODER_ITEM_BYTES, most=512)
        for start in range(0, len(rows), size):
            group = rows[start : start + size]
            keep, scores = self._forward(model, tokenizer, [(heads[plans[p][0]], plans[p][1][1][a:b]) for p, a, b in group])
            for (p, a, b), k, s in zip(group, keep, scores):
                probs[p][a:b] = k
                rerank[p].append(s)
        out: list[list[dict[str, Any]]] = [[] for _ in queries]
        for (q, (spans, ids, owner), wins), prob, scores in zip(plans, probs, rerank):
            means, kept = sentence_rounding(prob, owner, len(spans), self.threshold, self.always_select_title) if ids else ([], [])
            sentences = [{"i": i, "start": s, "end": e, "prob": m, "kept": k} for i, ((s, e), m, k) in enumerate(zip(spans, means, kept))]
            out[q].append({"rerank_score": max(scores) if scores else None, "windows": len(wins), "sentences": sentences})
        return out

    def _forward(self, model, tokenizer, rows: list[tuple[list[int], list[int]]]) -> tuple[list[torch.Tensor], list[float]]:
        """One batched pass over ``[CLS] query [SEP] context [SEP]`` rows, given as ``(query ids,
        context ids)``: P(keep) of each context token, rerank logits."""
        heads = [[tokenizer.cls_token_id, *q, tokenizer.sep_token_id] for q, _ in rows]
        width = max(len(h) + len(c) for h, (_, c) in zip(heads, rows)) + 1
        ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        mask, types = torch.zeros_like(ids), torch.zeros_like(ids)
        for r, (head, (_, c)) in enumerate(zip(heads, rows)):
            row = head + c + [tokenizer.sep_token_id]
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
            types[r, len(head) : len(row)] = 1
        device = next(model.parameters()).device
        logits, scores = model(ids.to(device), mask.to(device), types.to(device) if _uses_types(model) else None)
        keep = logits.float().softmax(-1)[..., 1].cpu()
        return [keep[r, len(h) : len(h) + len(c)] for r, (h, (_, c)) in enumerate(zip(heads, rows))], scores.float().cpu().tolist()


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
