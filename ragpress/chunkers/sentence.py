"""Sentence and paragraph chunking: spaCy sentences (or blank-line paragraphs) packed greedily into
chunks of at most ``max_tokens`` tokens. The baseline that the published chunkers are compared with.

Bounded on any input: spaCy reads at most :data:`SPACY_PIECE` characters at a time (cut at line
ends where there are any), ``\r``, ``\r\n`` and ``\n`` all end a line, and a line longer than the
limit is cut at token boundaries, so every chunk is within ``max_tokens``."""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import ClassVar, Literal

from ragpress.chunkers.base import Chunker, strip_span, token_spans
from ragpress.core.bundled import SPACY_MODEL
from ragpress.core.loaders import load_spacy, load_tokenizer
from ragpress.core.text import tokenizable
from ragpress.core.types import Chunk, Document

_EOL = r"(?:\r\n|\r|\n)"
_PARAGRAPH_BREAK = re.compile(_EOL + r"[ \t\f\v]*" + _EOL + r"\s*")
SPACY_PIECE = 100_000  # characters spaCy reads at once: its memory grows with the text it is given


def split_sentences(text: str, spacy_model: str = SPACY_MODEL) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (spaCy's sentence recogniser). The spans are in
    order, do not overlap, and together cover every non-whitespace character."""
    if not text.strip():
        return []
    pieces = bounded_pieces(text, SPACY_PIECE)
    docs = load_spacy(spacy_model).pipe((tokenizable(text[a:b]) for a, b in pieces), batch_size=1)  # one piece in memory at a time; spaCy refuses lone surrogates
    spans = (strip_span(text, a + s.start_char, a + s.end_char) for (a, _), doc in zip(pieces, docs) for s in doc.sents)
    return [(start, end) for start, end in spans if start < end]


def bounded_pieces(text: str, size: int) -> list[tuple[int, int]]:
    """``text`` as consecutive spans of at most ``size`` characters, each ending at the last line end
    inside it when there is one (a sentence rarely crosses a line end)."""
    out, start = [], 0
    while len(text) - start > size:
        cut = max(text.rfind("\n", start, start + size), text.rfind("\r", start, start + size)) + 1
        cut = cut if cut > start else start + size
        out.append((start, cut))
        start = cut
    return out + [(start, len(text))]


def split_lines(text: str) -> list[tuple[int, int]]:
    """Character spans of the non-blank lines of ``text``, surrounding whitespace excluded."""
    spans = (strip_span(text, m.start(), m.end()) for m in re.finditer(r"[^\r\n]+", text))
    return [(start, end) for start, end in spans if start < end]


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """Character spans of blank-line separated paragraphs, trailing whitespace excluded."""
    spans, start = [], 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        if match:
            start = match.end()
    return spans


@dataclasses.dataclass
class SentenceChunker(Chunker):
    """Packs consecutive sentences (``unit="sentence"``) or paragraphs (``unit="paragraph"``) into
    chunks of at most ``max_tokens`` tokens of ``tokenizer``. A unit longer than the limit is cut at
    its sentences, a sentence still longer at its lines (grammar blocks and tables have no sentence
    ends), and a line still longer at token boundaries."""

    method: ClassVar[str] = "sentence"
    unit: Literal["sentence", "paragraph"] = "paragraph"
    max_tokens: int = 200
    tokenizer: str = "minilm-l6"
    spacy_model: str = SPACY_MODEL

    def __post_init__(self):
        if self.unit not in ("sentence", "paragraph"):
            raise ValueError(f"unit must be 'sentence' or 'paragraph', got {self.unit!r}.")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")

    def chunk(self, document: Document) -> list[Chunk]:
        text = document.text
        spans = split_paragraphs(text) if self.unit == "paragraph" else split_sentences(text, self.spacy_model)
        counts = self._count([text[s:e] for s, e in spans])
        sentences = functools.partial(split_sentences, spacy_model=self.spacy_model)
        for split in (sentences, split_lines, self._split_tokens)[self.unit == "sentence" :]:
            spans, counts = self._split_long(text, spans, counts, split)
        chunks, group, total = [], [], 0
        for span, count in zip(spans, counts):
            if group and total + count > self.max_tokens:
                chunks.append(Chunk.of(document, group[0][0], group[-1][1], token_count=total))
                group, total = [], 0
            group.append(span)
            total += count
        if group:
            chunks.append(Chunk.of(document, group[0][0], group[-1][1], token_count=total))
        return chunks

    def _split_long(self, text, spans, counts, split):
        out_spans, out_counts = [], []
        for (start, end), count in zip(spans, counts):
            if count <= self.max_tokens:
                out_spans.append((start, end))
                out_counts.append(count)
                continue
            parts = [(start + s, start + e) for s, e in split(text[start:end])]
            out_spans.extend(parts)
            out_counts.extend(self._count([text[s:e] for s, e in parts]))
        return out_spans, out_counts

    def _split_tokens(self, text: str) -> list[tuple[int, int]]:
        return [span for span, _ in token_spans(text, 0, len(text), load_tokenizer(self.tokenizer), self.max_tokens)]

    def _count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = load_tokenizer(self.tokenizer)(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]
