"""The prompt every ragpress stage that talks to an LLM shares: how a Context becomes chat messages
(numbered sources, then the question; a soft context stands in the sources' place), how messages are
rendered (the model's chat template, or a plain fallback for tokenizers without one), and where each
source piece lands in the rendered prompt's tokens (:class:`PromptLayout`), so token-level methods
(GemFilter, RetroLM) can map what they select back to exact source spans.

Generators, compressors and trainers import it from here, so a compressor that scores the prompt
and a trainer that trains on it see exactly the prompt the generator will send.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ragpress.core.types import Chunk, Context

if TYPE_CHECKING:  # torch is needed only by the token-level helpers, which import it when called
    import torch

    from ragpress.core.lm import CausalLM

SYSTEM_PROMPT = (
    "Answer the question using only the numbered sources. "
    "Be brief. If the sources do not contain the answer, say so."
)
SOFT_CONTEXT = "<|soft context|>"
PLAIN_ANSWER_CUE = "\n\nAnswer:"  # ends a prompt rendered without a chat template


def chat_messages(context: Context, system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """Chat messages asking ``context.query`` over ``context.pieces`` as numbered sources. A soft
    context (``context.embeddings``) stands in the sources' place as :data:`SOFT_CONTEXT`, which
    a back end that accepts input embeddings swaps for the embedding rows."""
    if not isinstance(context, Context):
        raise TypeError(f"A generator takes a Context, got {type(context).__name__}; put a compressor before it.")
    sources = "\n\n".join(f"[{i}] {piece.text.strip()}" for i, piece in enumerate(context.pieces, 1))
    if context.embeddings is not None:
        sources = "\n\n".join(filter(None, (SOFT_CONTEXT, sources)))
    user = f"Sources:\n{sources}\n\nQuestion: {context.query}" if sources else f"Question: {context.query}"
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def user_turns(prompts: Sequence[str], system: str = "") -> list[list[dict[str, str]]]:
    """One conversation per prompt: the optional ``system`` message, then the prompt as the user's turn."""
    head = [{"role": "system", "content": system}] if system else []
    return [head + [{"role": "user", "content": prompt}] for prompt in prompts]


def render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, bool]:
    """The prompt text of ``messages`` under the tokenizer's chat template (with the generation
    prompt), and whether tokenising that text must add special tokens: only the plain fallback for a
    tokenizer without a template (messages joined by blank lines, then :data:`PLAIN_ANSWER_CUE`) does."""
    if tokenizer.chat_template is None:
        return "\n\n".join(m["content"] for m in messages) + PLAIN_ANSWER_CUE, True
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), False


def content_spans(text: str, messages: list[dict[str, str]]) -> list[tuple[int, int]]:
    """Where each message's content lies in the rendered prompt ``text``, found left to right: the
    untrusted part of a prompt (sources, question), as opposed to the template around it."""
    spans, cursor = [], 0
    for message in messages:
        at = text.find(message["content"], cursor)
        if at >= 0 and message["content"]:
            spans.append((at, at + len(message["content"])))
            cursor = at + len(message["content"])
    return spans


def encode_prompt(tokenizer: Any, text: str, spans: Sequence[tuple[int, int]], special: bool,
                  start: int = 0, end: int | None = None) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids and character offsets (into ``text``) of ``text[start:end]``. The template is read
    with its special tokens; the ``spans`` (message contents, :func:`content_spans`) are read as text,
    so a document that contains ``<|im_end|>`` cannot end a turn (ragpress.core.text). ``special``:
    add the tokenizer's BOS (the plain-chat fallback of :func:`render_chat`)."""
    return encode_prompts(tokenizer, [(text, spans)], special, start, end)[0]


def encode_prompts(tokenizer: Any, prompts: Sequence[tuple[str, Sequence[tuple[int, int]]]], special: bool,
                   start: int = 0, end: int | None = None, offsets: bool = True) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """:func:`encode_prompt` of each ``(text, spans)`` in ``prompts``, with one tokenizer call per kind
    of piece (template or content, with or without BOS) for all of them: a fast tokenizer encodes a
    list on all cores, and margin sampling builds thousands of prompts a step. ``offsets=False``: the
    ids alone, offsets left empty (building them was 40% of the time for margin sampling's prompts)."""
    pieces: list[tuple[int, int, int]] = []  # (prompt, lo, hi)
    kinds: dict[tuple[bool, bool], list[int]] = {}  # (add BOS, content) -> indices into pieces
    for p, (text, spans) in enumerate(prompts):
        stop = len(text) if end is None else end
        cuts = sorted({start, stop, *(c for span in spans for c in span if start < c < stop)})
        for lo, hi in zip(cuts, cuts[1:]):
            content = any(a <= lo and hi <= b for a, b in spans)
            kinds.setdefault((special and lo == start, content), []).append(len(pieces))
            pieces.append((p, lo, hi))
    encoded: list[tuple[list[int], list[tuple[int, int]]]] = [([], [])] * len(pieces)
    for (bos, content), members in kinds.items():
        texts = [prompts[pieces[i][0]][0][pieces[i][1] : pieces[i][2]] for i in members]
        batch = tokenizer(texts, add_special_tokens=bos, split_special_tokens=content, return_offsets_mapping=offsets)
        for k, (i, ids) in enumerate(zip(members, batch["input_ids"])):
            shift = pieces[i][1]
            encoded[i] = (ids, [(a + shift, b + shift) for a, b in batch["offset_mapping"][k]] if offsets else [])
    out: list[tuple[list[int], list[tuple[int, int]]]] = [([], []) for _ in prompts]
    for (p, _, _), (ids, places) in zip(pieces, encoded):
        out[p][0].extend(ids)
        out[p][1].extend(places)
    return out


def soft_prompt_ids(lm: CausalLM, question: str, system_prompt: str = SYSTEM_PROMPT) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids before and after the soft context in the prompt a generator builds for ``question``:
    trainers of soft compressors train on the very prompt the generator will use."""
    import torch

    messages = chat_messages(Context(query=question, embeddings=torch.empty(0)), system_prompt)
    return lm.chat_split(messages, SOFT_CONTEXT)


@dataclasses.dataclass
class PromptLayout:
    """A rendered prompt with each source piece's place in it, to map tokens back to sources."""

    ids: torch.Tensor  # [n] token ids of the prompt
    offsets: np.ndarray  # [n, 2] character span of each token in the prompt
    pieces: Sequence[Chunk]
    starts: np.ndarray  # where each piece's stripped text starts in the prompt
    leads: np.ndarray  # leading whitespace stripped from each piece
    lengths: np.ndarray  # length of each piece's stripped text
    owner: np.ndarray  # [n] index of the piece a token overlaps, -1 for prompt scaffolding

    @classmethod
    def build(cls, lm: CausalLM, messages: list[dict[str, str]], pieces: Sequence[Chunk]) -> PromptLayout:
        """Render ``messages`` exactly as :meth:`CausalLM.chat_ids` does and find each piece, which
        :func:`chat_messages` writes as ``[i] <stripped text>``, in the rendered text."""
        import torch

        tokenizer = lm.tokenizer
        prompt, special = render_chat(tokenizer, messages)
        ids, token_offsets = encode_prompt(tokenizer, prompt, content_spans(prompt, messages), special)
        starts, leads, lengths, cursor = [], [], [], 0
        for i, piece in enumerate(pieces, 1):
            text, marker = piece.text.strip(), f"[{i}] "
            at = prompt.find(marker + text, cursor)
            if at < 0:
                raise RuntimeError(f"Source [{i}] is not in the rendered prompt; the generator's source layout changed.")
            starts.append(at + len(marker))
            leads.append(len(piece.text) - len(piece.text.lstrip()))
            lengths.append(len(text))
            cursor = starts[-1] + len(text)
        offsets = np.asarray(token_offsets, dtype=np.int64).reshape(-1, 2)
        starts_a, lengths_a = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        owner = np.full(len(offsets), -1, dtype=np.int64)
        if len(pieces):
            ends = starts_a + lengths_a
            first = np.minimum(np.searchsorted(ends, offsets[:, 0], side="right"), len(ends) - 1)
            overlap = np.minimum(offsets[:, 1], ends[first]) > np.maximum(offsets[:, 0], starts_a[first])
            owner[overlap] = first[overlap]  # the token shares at least one character with that piece
        return cls(
            ids=torch.tensor(ids, dtype=torch.long),
            offsets=offsets,
            pieces=list(pieces),
            starts=starts_a,
            leads=np.asarray(leads, dtype=np.int64),
            lengths=lengths_a,
            owner=owner,
        )

    @property
    def sources(self) -> torch.Tensor:
        """Bool mask of the tokens that overlap a source piece."""
        import torch

        return torch.from_numpy(self.owner >= 0)

    def spans(self, selected: torch.Tensor, scores: torch.Tensor) -> tuple[Chunk, ...]:
        """The selected source tokens as exact spans of their chunks, adjacent tokens merged; each
        span's score is the mean pooled score of its tokens."""
        merged: list[list[int]] = []  # [piece, lo, hi, score sum, tokens], lo/hi in chunk chars
        for t in selected.tolist():
            p = int(self.owner[t])
            if p < 0:
                continue
            a, b = self.offsets[t]
            base = self.starts[p] - self.leads[p]  # prompt position of the chunk's first character
            lo = max(a, self.starts[p]) - base
            hi = min(b, self.starts[p] + self.lengths[p]) - base
            if merged and merged[-1][0] == p and lo <= merged[-1][2]:
                merged[-1][2] = max(merged[-1][2], hi)
                merged[-1][3] += float(scores[t])
                merged[-1][4] += 1
            else:
                merged.append([p, lo, hi, float(scores[t]), 1])
        out = []
        for p, lo, hi, total, count in merged:
            chunk = self.pieces[p]
            out.append(
                Chunk(
                    doc_id=chunk.doc_id,
                    start=chunk.start + lo,
                    end=chunk.start + hi,
                    text=chunk.text[lo:hi],
                    score=total / count,
                    token_count=count,
                    metadata={"source_piece": p},
                )
            )
        return tuple(out)
