"""Sentence and paragraph chunking: sentences (or blank-line paragraphs) packed greedily into chunks of
at most ``max_tokens`` tokens. The baseline that the published chunkers are compared with.

Sentences come from :func:`rule_sentences` by default (punctuation, abbreviation and blank-line
rules: about 100x faster than spaCy, and 0.91 boundary F1 against it on the essays, see
benchmarks/RESULTS.md) or, with ``splitter="spacy"``, from spaCy's sentence recogniser
(:func:`split_sentences`, which Provence and Meta-Chunking use).

Bounded on any input: spaCy reads at most :data:`SPACY_PIECE` characters at a time (cut at line
ends where there are any), ``\r``, ``\r\n`` and ``\n`` all end a line, and a line longer than the
limit is cut at token boundaries, so every chunk is within ``max_tokens``."""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import ClassVar, Literal

from ragpress.chunkers.base import Chunker, strip_span, token_counts, token_spans
from ragpress.core.bundled import SPACY_MODEL
from ragpress.core.loaders import load_spacy, load_tokenizer
from ragpress.core.text import tokenizable
from ragpress.core.types import Chunk, Document

_EOL = r"(?:\r\n|\r|\n)"
_PARAGRAPH_BREAK = re.compile(_EOL + r"[ \t\f\v]*" + _EOL + r"\s*")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e cf al fig figs eq no nos vol pp ch sec approx dept est inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k a.m p.m".split()
)  # a period after these (or after a single letter, an initial) does not end a sentence
_SENTENCE_END = re.compile(r"""[.!?\u2026]+['"\u201d\u2019)\]]*(?=\s)|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])""")
_BLOCK_START = re.compile(_EOL + r"[ \t\f\v]*" + _EOL + r"|" + _EOL + r"(?=[ \t]*(?:[*\u2022+-]|\d+[.)]|>>>)\s)")
_WORD_BEFORE_PERIOD = re.compile(r"([\w.]*)\.$")
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


def rule_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` by rules, in one pass of regular expressions: a
    sentence ends at ``.``, ``!``, ``?`` or an ellipsis (with closing quotes and brackets) before
    whitespace and a character that is not lower case, except after an abbreviation or an initial;
    a blank line, or a line that starts a list item or a ``>>>`` prompt, also starts one. (A period
    glued to a capitalised word, ``end.Next``, ends one too: extracted web text loses such spaces.)
    Same contract as :func:`split_sentences`: ordered, disjoint, covering, whitespace trimmed."""
    cuts = {m.end() for m in _BLOCK_START.finditer(text)}
    for m in _SENTENCE_END.finditer(text):
        follow = text[m.end() : m.end() + 200].lstrip()[:1]
        if not follow or follow.islower():
            continue
        stop = m.start() if m.start() < m.end() else m.start() - 1
        word = _WORD_BEFORE_PERIOD.search(text, max(0, stop - 12), stop + 1) if text[stop] == "." else None
        if word and (word.group(1).lower() in _ABBREVIATIONS or (len(word.group(1)) == 1 and word.group(1).isalpha())):
            continue
        cuts.add(m.end())
    spans, start = [], 0
    for cut in [*sorted(cuts), len(text)]:
        a, b = strip_span(text, start, cut)
        if a < b:
            spans.append((a, b))
        start = cut
    return spans


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
    ends), and a line still longer at token boundaries. ``splitter`` finds the sentences: ``"rules"``
    (:func:`rule_sentences`, fast) or ``"spacy"`` (:func:`split_sentences` with ``spacy_model``)."""

    method: ClassVar[str] = "sentence"
    unit: Literal["sentence", "paragraph"] = "paragraph"
    max_tokens: int = 200
    tokenizer: str = "minilm-l6"
    splitter: Literal["rules", "spacy"] = "rules"
    spacy_model: str = SPACY_MODEL

    def __post_init__(self):
        if self.splitter not in ("rules", "spacy"):
            raise ValueError(f"splitter must be 'rules' or 'spacy', got {self.splitter!r}.")
        if self.unit not in ("sentence", "paragraph"):
            raise ValueError(f"unit must be 'sentence' or 'paragraph', got {self.unit!r}.")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")

    def chunk(self, document: Document) -> list[Chunk]:
        text = document.text
        sentences = rule_sentences if self.splitter == "rules" else functools.partial(split_sentences, spacy_model=self.spacy_model)
        spans = split_paragraphs(text) if self.unit == "paragraph" else sentences(text)
        counts = self._count([text[s:e] for s, e in spans])
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
        return token_counts(load_tokenizer(self.tokenizer), texts)
