"""Sentence and paragraph chunking: spaCy sentences (or blank-line paragraphs) packed greedily into
chunks of at most ``max_tokens`` tokens. The baseline that the published chunkers are compared with."""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import ClassVar, Literal

from ragpress.chunkers.base import Chunker, strip_span
from ragpress.core.bundled import SPACY_MODEL
from ragpress.core.loaders import load_spacy, load_tokenizer
from ragpress.core.types import Chunk, Document

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")


def split_sentences(text: str, spacy_model: str = SPACY_MODEL) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (spaCy's sentence recogniser). The spans are in
    order, do not overlap, and together cover every non-whitespace character."""
    if not text.strip():
        return []
    spans = (strip_span(text, s.start_char, s.end_char) for s in load_spacy(spacy_model)(text).sents)
    return [(start, end) for start, end in spans if start < end]


def split_lines(text: str) -> list[tuple[int, int]]:
    """Character spans of the non-blank lines of ``text``, surrounding whitespace excluded."""
    spans = (strip_span(text, m.start(), m.end()) for m in re.finditer(r"[^\n]+", text))
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
    its sentences, and a sentence still longer at its lines (grammar blocks and tables have no
    sentence ends); a single line longer than the limit becomes a chunk of its own, and its
    ``token_count`` shows it."""

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
        for split in (sentences, split_lines)[self.unit == "sentence" :]:
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

    def _count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = load_tokenizer(self.tokenizer)(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]
