"""Meta-Chunking, Perplexity (PPL) Chunking and Margin Sampling Chunking: Zhao et al., "Meta-Chunking: Learning Efficient Text
Segmentation via Logical Perception" (arXiv:2410.12788), §3 "Perplexity Chunking", "KV caching"
for long texts and "dynamic combination"; official code: github.com/IAAR-Shanghai/Meta-Chunking
(``tools/ppl_chunking.py``, ``lmchunker.chunker`` defaults). Both methods share :class:`MetaChunker`
(sentences, dynamic merging, spans); the scoring lives in ``perplexity.py`` and ``margin.py``.

Steps, each as the official code does it unless marked *deviation*:

1. Split the text into sentences.
2. Score every sentence by the mean negative log-likelihood of its tokens given all the text before
   it (the paper's ``PPL_M(x_i)``; the code compares these log-perplexities, in nats, and so do
   we). The first sentence has no context: its first token is not scored.
3. Long text: one causal pass in windows of ``window`` tokens that reuse the KV cache of the
   windows before; once cache plus window would exceed ``max_context`` tokens the oldest cached
   tokens are dropped (as in the code, the kept entries still carry what their layers saw of older
   text: this bounds attention, it does not re-encode a shorter context). *Deviations*: we drop
   exactly what is needed and keep every token at its true position (the code trims
   ``window + 1`` tokens at a time and lets positions restart at the cache length, so the model
   sees the kept keys at wrong RoPE distances), and we score each window's first token from the
   previous window's last logits instead of prepending a ``" "`` token.
4. A boundary follows sentence ``i`` (it ends a chunk) when ``i`` is a local minimum, never at
   either end: ``v[i]`` is below both neighbours and drops by at least ``threshold`` from *either*
   of them, or ``v[i]`` is below ``v[i-1]`` by at least ``threshold`` and equal to ``v[i+1]``. The
   paper's equation asks for the *smaller* drop to exceed ``threshold`` instead;
   ``both_neighbours=True`` follows the paper.
5. Dynamic merging (optional): consecutive meta-chunks are joined while their total length stays
   within ``merge_target`` words (or characters).

Other deviations: the model reads each sentence with the whitespace before it (the code joins
stripped sentences, so it reads "end.Next"); sentences are never truncated (the code cuts
sentences over 512 words); lone surrogates are scored as U+FFFD while chunks keep the source text.

Margin Sampling Chunking (§3 "Margin Sampling Chunking"; official ``tools/margin_sampling_chunking.py``):
for each next sentence the LM is asked, in its chat format, whether to split "A B" into "A" and
"B" (answer 1) or keep it whole (answer 2), where A is the chunk built so far. The margin
``p("2") - p("1")`` of the next-token distribution decides: above the threshold the sentence joins
the chunk, otherwise it starts a new one. The threshold starts at ``threshold`` (0) and, when
``dynamic_window`` is set (official: 5), becomes the mean of the last ``dynamic_window`` margins
once that many exist.

Batching: the question for a sentence depends on earlier decisions (A grows), so each document's
prompts are built speculatively for its next few sentences assuming each earlier one joins; the
prompts of all documents of one call go through one batched scoring step (length-sorted forward
passes of ``batch_size`` prompts), decisions are taken in order, and the prompts after a
document's first split are rebuilt. The result equals the one-prompt-at-a-time loop, document by
document. ``context="sentence"`` asks about the previous sentence alone instead of the whole
chunk (a *deviation*: every prompt is then known in advance, so all sentence pairs of all
documents are one prompt batch).

PPL chunking batches across documents too: the windows of many documents, length-sorted, share
each forward pass while every document keeps reusing its own KV cache (``perplexity.py``).

Other deviations: A and "A B" are quoted as they stand in the source (the code joins with one
space); the prompt goes through the model's own chat template (the code hard-codes Qwen's ChatML,
which SmolLM2 shares).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar, Literal

from tqdm.auto import tqdm

from ragpress.chunkers.base import Chunker
from ragpress.chunkers.meta_chunking.margin import MarginWalk, keep_margins
from ragpress.chunkers.meta_chunking.perplexity import sentence_nll, sentence_nll_batch
from ragpress.chunkers.sentence import split_sentences
from ragpress.core.device import forward_budget
from ragpress.core.lm import CausalLM
from ragpress.core.loaders import load_causal_lm
from ragpress.core.text import tokenizable
from ragpress.core.types import Chunk, Document

GPU_LOOKAHEAD = 4  # sentences asked ahead, shared by a call's documents, when batch_size is None on a GPU


def find_minima(values: Sequence[float], threshold: float = 0.0, both_neighbours: bool = False) -> list[int]:
    """Indices of the sentences that end a chunk (step 4 of the module docstring). NaN values
    never qualify and never make a neighbour qualify."""
    minima = []
    for i in range(1, len(values) - 1):
        left, here, right = values[i - 1], values[i], values[i + 1]
        if not here < left:
            continue
        if here < right:
            drops = (left - here, right - here)
            if (min(drops) > threshold) if both_neighbours else (max(drops) >= threshold):
                minima.append(i)
        elif here == right and (left - here > threshold if both_neighbours else left - here >= threshold):
            minima.append(i)
    return minima


def merge_ends(lengths: Sequence[int], target: int) -> list[int]:
    """Dynamic combination: group consecutive meta-chunks of the given lengths greedily so that a
    group's total stays within ``target`` (a single meta-chunk longer than ``target`` stays alone);
    returns the index of the last meta-chunk of each group."""
    ends, total = [], 0
    for i, length in enumerate(lengths):
        if i and total + length > target:
            ends.append(i - 1)
            total = 0
        total += length
    return ends + [len(lengths) - 1] if lengths else []


@dataclasses.dataclass
class MetaChunker(Chunker):
    """What both Meta-Chunking methods share: sentences, a causal LM, dynamic merging and spans.

    ``merge_target``: ``None`` keeps the meta-chunks (the official default, ``dynamic_merge='no'``);
    a number merges them up to that many ``merge_unit`` (the official code counts words for English,
    characters for Chinese; its example target is 200)."""

    model: str = "smollm2-135m"
    merge_target: int | None = None
    merge_unit: Literal["words", "chars"] = "words"
    device: str | None = None
    dtype: str | None = None  # default: bfloat16 on a GPU, float32 on the CPU

    def __post_init__(self):
        if self.merge_target is not None and self.merge_target < 1:
            raise ValueError(f"merge_target must be a positive length or None, got {self.merge_target}.")
        if self.merge_unit not in ("words", "chars"):
            raise ValueError(f"merge_unit must be 'words' or 'chars', got {self.merge_unit!r}.")

    def lm(self) -> CausalLM:
        return load_causal_lm(self.model, device=self.device, dtype=self.dtype)

    def sentences(self, document: Document) -> list[tuple[int, int]]:
        if not document.text.strip():
            raise ValueError(f"Document {document.id!r} is empty or only whitespace: there is nothing to chunk.")
        return split_sentences(tokenizable(document.text))

    def meta_chunk_ends(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> list[list[int]]:
        """Index of the last sentence of each meta-chunk, for each text (the method's own step, batched
        across texts)."""
        raise NotImplementedError

    def chunk(self, document: Document) -> list[Chunk]:
        return self.chunk_batch([document])[0]

    def chunk_batch(self, documents: list[Document]) -> list[list[Chunk]]:
        spans = [self.sentences(doc) for doc in documents]
        ends = self.meta_chunk_ends([doc.text for doc in documents], spans)
        return [self.spans_to_chunks(doc, s, e) for doc, s, e in zip(documents, spans, ends, strict=True)]

    def spans_to_chunks(self, document: Document, spans: list[tuple[int, int]], ends: list[int]) -> list[Chunk]:
        """Meta-chunks (sentence ``ends``) as chunks of ``document``, merged up to ``merge_target``."""
        starts = [0] + [end + 1 for end in ends[:-1]]
        if self.merge_target is not None:
            measure = (lambda s: len(s.split())) if self.merge_unit == "words" else len
            lengths = [measure(document.text[spans[a][0] : spans[b][1]]) for a, b in zip(starts, ends)]
            groups = merge_ends(lengths, self.merge_target)
            starts, ends = [starts[0]] + [ends[g] + 1 for g in groups[:-1]], [ends[g] for g in groups]
        return [
            Chunk.of(document, spans[a][0], spans[b][1], metadata={"sentences": b - a + 1})
            for a, b in zip(starts, ends)
        ]


@dataclasses.dataclass
class PerplexityChunker(MetaChunker):
    """PPL Chunking (Meta-Chunking §3): cut after sentences at local minima of the per-sentence
    perplexity sequence. Defaults are the official ``lmchunker.chunker`` ones: ``threshold=0``;
    ``window`` is its ``batch_size`` (tokens per forward pass, 4096) and ``max_context`` its
    ``max_txt_size`` (9000), capped at the model's maximum length. ``both_neighbours=True`` uses the
    paper's equation (both drops must exceed ``threshold``) instead of the code's (either drop).
    ``batch_size``: windows of ``window`` tokens per forward pass across documents (shorter
    documents pack more rows into as many tokens); ``None`` fits the device
    (:func:`~ragpress.core.device.token_budget`: two windows on a CPU, more from a GPU's free memory)."""

    method: ClassVar[str] = "ppl_chunking"
    threshold: float = 0.0
    both_neighbours: bool = False
    window: int = 4096
    max_context: int = 9000
    batch_size: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.window < self.max_context:
            raise ValueError(
                f"Need 0 < window < max_context, got window={self.window}, max_context={self.max_context}."
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 window, or None to fit the device; got {self.batch_size}.")

    def sentence_perplexities(self, document: Document) -> tuple[list[tuple[int, int]], list[float]]:
        """The sentence spans of ``document`` and their log-perplexities (for inspection and plots)."""
        spans = self.sentences(document)
        return spans, sentence_nll(self.lm(), document.text, spans, self.window, self.max_context)

    def meta_chunk_ends(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> list[list[int]]:
        lm = self.lm()
        if self.batch_size is None:
            tokens, pairs = forward_budget(lm.device, lm.model.config, logits=True)
            tokens = max(tokens, self.window)
        else:
            tokens, pairs = self.batch_size * self.window, None
        values = sentence_nll_batch(lm, texts, spans, self.window, self.max_context, tokens, pairs)
        return [find_minima(v, self.threshold, self.both_neighbours) + [len(s) - 1] for v, s in zip(values, spans)]


@dataclasses.dataclass
class MarginSamplingChunker(MetaChunker):
    """Margin Sampling Chunking (Meta-Chunking §3). ``threshold``: the starting (or, with
    ``dynamic_window=None``, fixed) margin a sentence must exceed to join the chunk;
    ``dynamic_window``: how many recent margins the dynamic threshold averages (official 5);
    ``context``: ``"chunk"`` (official) or ``"sentence"`` (see module docstring); ``batch_size``:
    prompts per forward pass, shared by the documents of one call (``None``: as many as fit the
    device, :func:`~ragpress.core.device.token_budget`). With ``context="chunk"`` a prompt asked
    ahead is wasted when the sentence before it splits, and with the dynamic threshold (a running
    mean) about every other sentence splits: so each document asks ``batch_size // documents``
    sentences ahead (at least one; with ``None``, one on a CPU and ``GPU_LOOKAHEAD`` shared on a GPU).
    Precision moves decisions whose margin sits near the threshold: on a GPU the default bfloat16
    gave boundary F1 0.82 against the official code in bfloat16, and the official code's own
    bfloat16 and float32 boundaries agree to F1 0.91 (CPU, 8 documents); ``dtype="float32"`` reproduces the official
    float32 boundaries (F1 1.000) at a cost: 40.4 s against 11.0 s for 100 documents on an H200
    (two runs; benchmarks/RESULTS.md, issue 15)."""

    method: ClassVar[str] = "margin_sampling"
    threshold: float = 0.0
    dynamic_window: int | None = 5
    context: Literal["chunk", "sentence"] = "chunk"
    batch_size: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.context not in ("chunk", "sentence"):
            raise ValueError(f"context must be 'chunk' or 'sentence', got {self.context!r}.")
        if (self.batch_size is not None and self.batch_size < 1) or (self.dynamic_window is not None and self.dynamic_window < 1):
            raise ValueError(
                "batch_size and dynamic_window must be at least 1 (dynamic_window=None fixes the threshold)."
            )

    def threshold_after(self, margins: list[float]) -> float:
        """The threshold for the next decision, given the margins of the decisions so far."""
        if self.dynamic_window is None or len(margins) < self.dynamic_window:
            return self.threshold
        recent = margins[-self.dynamic_window :]
        return sum(recent) / len(recent)

    def meta_chunk_ends(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> list[list[int]]:
        lm = self.lm()
        walks = [MarginWalk(tokenizable(text), list(s)) for text, s in zip(texts, spans)]
        progress = tqdm(total=sum(len(s) - 1 for s in spans), desc="margin sampling", disable=len(texts) < 20, leave=False)
        active = [walk for walk in walks if not walk.done]
        while active:
            if self.context == "sentence":
                ahead = max(len(walk.spans) for walk in active)  # every prompt is known: ask them all at once
            else:
                ahead = max(1, (self.batch_size or (GPU_LOOKAHEAD if lm.device.type == "cuda" else 1)) // len(active))
            asked = [walk.pairs(ahead, self.context) for walk in active]
            margins = iter(keep_margins(lm, [pair for pairs in asked for pair in pairs], self.batch_size))
            for walk, pairs in zip(active, asked):
                before = walk.k
                walk.take([next(margins) for _ in pairs], self.threshold_after, self.context)
                progress.update(walk.k - before)
            active = [walk for walk in active if not walk.done]
        progress.close()
        return [walk.ends + [len(walk.spans) - 1] for walk in walks]
