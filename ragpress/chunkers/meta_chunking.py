"""Meta-Chunking, Perplexity (PPL) Chunking: Zhao et al., "Meta-Chunking: Learning Efficient Text
Segmentation via Logical Perception" (arXiv:2410.12788), §3 "Perplexity Chunking", "KV caching"
for long texts and "dynamic combination"; official code: github.com/IAAR-Shanghai/Meta-Chunking
(``tools/ppl_chunking.py``, ``lmchunker.chunker`` defaults). Margin Sampling Chunking is in
:mod:`ragpress.chunkers.margin_sampling` and shares :class:`MetaChunker` from here.

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
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Literal

import torch
from tqdm.auto import tqdm

from ragpress.chunkers.base import Chunker
from ragpress.chunkers.sentence import split_sentences
from ragpress.core.models import CausalLM, load_causal_lm
from ragpress.core.types import Chunk, Document

_SURROGATE = re.compile("[\ud800-\udfff]")


def scorable_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes kept by ``surrogateescape``) replaced by
    U+FFFD, one character for one, so offsets stay valid; tokenizers refuse surrogates."""
    return _SURROGATE.sub("\ufffd", text)


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


def _is_rotary(config) -> bool:
    return any(getattr(config, name, None) is not None for name in ("rope_parameters", "rope_theta", "rotary_dim"))


def _drop_oldest(cache, keep: int) -> None:
    """Keep only the ``keep`` most recent tokens in every full-attention layer of a DynamicCache
    (sliding-window layers bound themselves)."""
    for layer in cache.layers:
        if not getattr(layer, "is_sliding", False) and layer.keys is not None and layer.keys.shape[-2] > keep:
            layer.keys, layer.values = layer.keys[..., -keep:, :], layer.values[..., -keep:, :]


@torch.inference_mode()
def token_nll(lm: CausalLM, ids: Sequence[int], window: int, max_context: int) -> torch.Tensor:
    """``-log p(ids[t] | earlier ids)`` for ``t = 1 .. len(ids) - 1`` from one causal pass in windows of
    ``window`` tokens that reuse the KV cache; each window attends to at most ``max_context`` tokens
    (cache plus itself), the oldest dropped first, every token kept at its true position."""
    if window >= max_context:
        raise ValueError(f"window ({window}) must be smaller than max_context ({max_context}).")
    if len(ids) > lm.max_length and not _is_rotary(lm.model.config):
        raise ValueError(
            f"{lm.name} has learned absolute positions up to {lm.max_length}; a text of {len(ids)} tokens "
            "cannot be scored with a sliding cache. Use a RoPE model (e.g. 'smollm2-135m') or a shorter text."
        )
    cache, last_logits, out = None, None, []
    starts = range(0, len(ids), window)
    for start in tqdm(starts, desc="perplexity windows", disable=len(starts) < 4, leave=False):
        piece = torch.tensor([list(ids[start : start + window])], device=lm.device)
        if cache is not None:
            _drop_oldest(cache, max_context - piece.shape[1])
        positions = torch.arange(start, start + piece.shape[1], device=lm.device)[None]
        result = lm.model(input_ids=piece, position_ids=positions, past_key_values=cache, use_cache=True)
        logits = result.logits[0].float()
        if last_logits is not None:  # this window's first token, predicted by the previous window
            out.append(torch.nn.functional.cross_entropy(last_logits[None], piece[0, :1], reduction="none").cpu())
        out.append(torch.nn.functional.cross_entropy(logits[:-1], piece[0, 1:], reduction="none").cpu())
        cache, last_logits = result.past_key_values, logits[-1]
    return torch.cat(out) if out else torch.zeros(0)


def sentence_nll(
    lm: CausalLM, text: str, spans: Sequence[tuple[int, int]], window: int = 4096, max_context: int = 9000
) -> list[float]:
    """Mean token NLL (log-perplexity, nats) of each sentence span of ``text`` given the text before
    it, all from one windowed KV-cached pass (:func:`token_nll`). Each sentence is tokenised with
    the whitespace before it so the model reads the original text. NaN for a first sentence of one
    token (nothing of it can be scored)."""
    if not spans:
        raise ValueError("No sentences to score: the text is empty or only whitespace.")
    text = scorable_text(text)
    cuts = [0] + [end for _, end in spans[:-1]]
    pieces = [text[cut:end] for cut, (_, end) in zip(cuts, spans)]
    token_lists = lm.tokenizer(pieces, add_special_tokens=False)["input_ids"]
    ids = [token for tokens in token_lists for token in tokens]
    context = min(max_context, lm.max_length)
    nll = token_nll(lm, ids, min(window, context // 2), context)
    values, offset = [], 0
    for tokens in token_lists:
        # token t is predicted by nll[t - 1]; the very first token has no prediction
        scored = nll[max(offset - 1, 0) : offset + len(tokens) - 1]
        values.append(scored.mean().item() if len(scored) else math.nan)
        offset += len(tokens)
    return values


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

    def __post_init__(self):
        if self.merge_target is not None and self.merge_target < 1:
            raise ValueError(f"merge_target must be a positive length or None, got {self.merge_target}.")
        if self.merge_unit not in ("words", "chars"):
            raise ValueError(f"merge_unit must be 'words' or 'chars', got {self.merge_unit!r}.")

    def lm(self) -> CausalLM:
        return load_causal_lm(self.model, device=self.device)

    def sentences(self, document: Document) -> list[tuple[int, int]]:
        if not document.text.strip():
            raise ValueError(f"Document {document.id!r} is empty or only whitespace: there is nothing to chunk.")
        return split_sentences(scorable_text(document.text))

    def meta_chunk_ends(self, text: str, spans: list[tuple[int, int]]) -> list[int]:
        """Index of the last sentence of each meta-chunk (the method's own step)."""
        raise NotImplementedError

    def chunk(self, document: Document) -> list[Chunk]:
        spans = self.sentences(document)
        ends = self.meta_chunk_ends(document.text, spans)
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
    paper's equation (both drops must exceed ``threshold``) instead of the code's (either drop)."""

    threshold: float = 0.0
    both_neighbours: bool = False
    window: int = 4096
    max_context: int = 9000

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.window < self.max_context:
            raise ValueError(
                f"Need 0 < window < max_context, got window={self.window}, max_context={self.max_context}."
            )

    def sentence_perplexities(self, document: Document) -> tuple[list[tuple[int, int]], list[float]]:
        """The sentence spans of ``document`` and their log-perplexities (for inspection and plots)."""
        spans = self.sentences(document)
        return spans, sentence_nll(self.lm(), document.text, spans, self.window, self.max_context)

    def meta_chunk_ends(self, text: str, spans: list[tuple[int, int]]) -> list[int]:
        values = sentence_nll(self.lm(), text, spans, self.window, self.max_context)
        return find_minima(values, self.threshold, self.both_neighbours) + [len(spans) - 1]


def plot_perplexity(values: Sequence[float], ends: Sequence[int], threshold: float | None = None, ax=None):
    """The per-sentence log-perplexity curve with a dashed line after each sentence that ends a
    chunk (``ends``, e.g. :func:`find_minima`); returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    figure, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(6.0, len(values) / 8), 3.2))
    ax.plot(range(len(values)), values, marker="o", markersize=3, linewidth=1, color="tab:blue")
    ends = [e for e in ends if e < len(values) - 1]
    ax.scatter(ends, [values[e] for e in ends], color="tab:red", zorder=3, s=18, label="chunk ends here")
    for end in ends:
        ax.axvline(end + 0.5, color="tab:red", linestyle="--", linewidth=0.8, alpha=0.6)
    title = f"PPL Chunking: {len(ends) + 1} chunks from {len(values)} sentences"
    ax.set(
        xlabel="sentence",
        ylabel="mean token NLL (log PPL, nats)",
        title=title + (f", threshold {threshold:g}" if threshold is not None else ""),
    )
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    if ends:
        ax.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return figure
