"""EDU trees: a document as a tree of exact source spans,
document -> sections -> paragraphs -> sentences -> elementary discourse units (EDUs).

Zhou et al., "From Context to EDUs: Faithful and Structured Context Compression via Elementary
Discourse Unit Decomposition" (arXiv 2512.14244, 2025). Their LingoEDU (Sec. 3.1) turns linear text
into a structural relation tree whose nodes point at EDU spans anchored to source indices, so a
selection can never hallucinate text. We keep that contract: every node is a :class:`Chunk` with
``document.text[start:end] == text``; ``metadata["level"]`` names the level and ``metadata["path"]``
gives the child indices from the root.

Deviations (stated, with why):

* LingoEDU is a trained 4B model we cannot download. Sections come from markdown headings (and,
  with ``plain_headings``, short unpunctuated title lines), paragraphs from blank lines, sentences
  and EDUs from the spaCy dependency parse: a clause starts an EDU when its head is a verb with its
  own subject (or marker) attached as ``advcl``, ``ccomp``, ``conj``, ``parataxis``, ``csubj`` or a
  comma-set ``relcl`` (RST-DT segments non-restrictive relatives only), and before a discourse
  connective that follows a comma. ``segmenter="llm"`` instead prompts any causal LM with the
  numbered words of each sentence (in the spirit of LingoEDU's numbered-sentence prompt); a reply
  that is not a valid increasing list of word numbers falls back to the parse for that sentence.
* The paper's edges also carry discourse relations (elaboration, contrast); ours are hierarchy only.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ragpress.core.loaders import load_causal_lm, load_spacy
from ragpress.core.prompt import user_turns
from ragpress.core.text import tokenizable
from ragpress.core.types import Chunk, Document

LEVELS = ("document", "section", "paragraph", "sentence", "edu")
_CLAUSES = {"advcl", "ccomp", "conj", "parataxis", "csubj", "relcl"}
_SUBJECTS = {"nsubj", "nsubjpass", "expl", "csubj", "csubjpass", "mark"}
CONNECTIVES = frozenset(
    ["because", "although", "though", "while", "whereas", "but", "so", "yet", "however", "unless", "since", "therefore", "thus", "hence", "instead", "otherwise", "meanwhile", "moreover", "furthermore", "nevertheless", "nonetheless", "whereby", "if", "when"]
)
_ATX = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+\S")
_EDU_SYSTEM = (
    "You segment sentences into elementary discourse units (EDUs): the minimal clauses that each "
    "convey one piece of information."
)


@dataclass
class EDUTree:
    """A walkable tree of :class:`Chunk` nodes; ``root`` is the document (or input chunk) node.
    Print it for an outline; :mod:`ragpress.chunkers.edu.viz` draws it."""

    root: Chunk

    def walk(self) -> Iterator[Chunk]:
        """Every node, depth first, in source order."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def nodes(self, level: str) -> list[Chunk]:
        check_level(level)
        return [n for n in self.walk() if n.metadata["level"] == level]

    def cut(self, level: str) -> list[Chunk]:
        """The outermost nodes at ``level`` or deeper: they tile the text (``level="section"`` gives
        top-level sections, each with its sub-sections inside)."""
        rank = LEVELS.index(check_level(level))
        out, stack = [], [self.root]
        while stack:
            node = stack.pop()
            if LEVELS.index(node.metadata["level"]) >= rank or not node.children:
                out.append(node)
            else:
                stack.extend(reversed(node.children))
        return out

    def outline(self, depth: str = "edu", width: int = 72) -> str:
        """A text outline, one line a node, indented by depth, down to level ``depth``."""
        rank = LEVELS.index(check_level(depth))
        lines = []
        for node in self.walk():
            level = node.metadata["level"]
            if LEVELS.index(level) > rank:
                continue
            preview = " ".join(node.text.split())
            preview = preview if len(preview) <= width else preview[: width - 1] + "…"
            title = f" «{node.metadata['title']}»" if node.metadata.get("title") else ""
            indent = "  " * (len(node.metadata["path"]))
            lines.append(f"{indent}{level}{title} [{node.start}:{node.end}] {preview}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.outline()

def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"Unknown tree level {level!r}; choose one of {', '.join(LEVELS)}.")
    return level


def _blocks(text: str, plain_headings: bool) -> list[tuple[int, int, int]]:
    """Paragraph blocks ``(start, end, heading_level)``: blank lines separate blocks, a markdown
    heading line is a block of its own (``heading_level`` > 0)."""
    blocks, current = [], None
    for match in re.finditer(r"[^\n]*\n?", text):
        line = match.group()
        if not line:
            break
        if not line.strip() or _ATX.match(line):
            if current:
                blocks.append((*current, 0))
                current = None
            if line.strip():
                blocks.append((match.start(), match.end(), len(_ATX.match(line).group(1))))
            continue
        current = (current[0] if current else match.start(), match.end())
    if current:
        blocks.append((*current, 0))
    blocks = [(*_trim(text, s, e), h) for s, e, h in blocks]
    if plain_headings and not any(h for _, _, h in blocks):
        blocks = [(s, e, 1 if i + 1 < len(blocks) and _looks_like_title(text[s:e]) else 0) for i, (s, e, _) in enumerate(blocks)]
    return blocks


def _looks_like_title(line: str) -> bool:
    return "\n" not in line and len(line.split()) <= 12 and line[0].isupper() and line[-1] not in ".!?:;,\"')]”’"


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def parse_boundaries(sent) -> list[int]:
    """Token indices (into ``sent.doc``) where an EDU starts inside the spaCy sentence ``sent``,
    from clause attachments and discourse connectives (see the module docstring)."""
    cuts = set()
    for tok in sent:
        children = {c.dep_ for c in tok.children}
        if tok.dep_ in _CLAUSES and tok.pos_ in ("VERB", "AUX") and (tok.dep_ == "advcl" or children & _SUBJECTS):
            first = tok.left_edge.i
            if tok.dep_ == "relcl" and (first == sent.start or sent.doc[first - 1].text != ","):
                continue  # restrictive relative clause: not an EDU of its own
            if first > sent.start and (sent.doc[first - 1].dep_ == "cc" or sent.doc[first - 1].lower_ in CONNECTIVES):
                first -= 1
            cuts.update((first, tok.right_edge.i + 1))
        elif (
            tok.lower_ in CONNECTIVES
            and tok.dep_ in ("advmod", "mark", "cc")
            and tok.i > sent.start
            and sent.doc[tok.i - 1].text in (",", ";", ":")
            and tok.head.pos_ in ("VERB", "AUX")
        ):
            cuts.add(tok.i)
    return sorted(cuts)


def _edu_spans(sent, cuts: list[int], min_words: int) -> list[tuple[int, int]]:
    """Character spans of the EDUs of ``sent`` cut before tokens ``cuts``: closing punctuation stays
    with the unit before it, and units under ``min_words`` words join a neighbour."""
    doc, starts = sent.doc, []
    for i in cuts:
        while i < sent.end and doc[i].is_punct and not doc[i].is_left_punct:
            i += 1
        if sent.start < i < sent.end:
            starts.append(i)
    bounds = [sent.start, *sorted(set(starts)), sent.end]
    pieces = [[a, b] for a, b in itertools.pairwise(bounds)]
    words = lambda p: sum(not t.is_punct and not t.is_space for t in doc[p[0] : p[1]])
    i = 0
    while len(pieces) > 1 and i < len(pieces):
        if words(pieces[i]) < min_words:
            if i == 0:
                pieces[1][0] = pieces[0][0]
            else:
                pieces[i - 1][1] = pieces[i][1]
            del pieces[i]
        else:
            i += 1
    return [_trim(doc.text, doc[a].idx, doc[b - 1].idx + len(doc[b - 1].text)) for a, b in pieces]


def llm_boundaries(reply: str, sent) -> list[int] | None:
    """Token cuts from an LLM reply listing the numbers of the words that start an EDU, or
    ``None`` when the reply is not such a list (then the parse is used)."""
    words = [t for t in sent if not t.is_space]
    if reply.strip().lower().startswith("none"):
        return []
    if not re.fullmatch(r"[\s\d,;]+\.?", reply or "x"):
        return None
    numbers = [int(n) for n in re.findall(r"\d+", reply)]
    if not numbers or numbers != sorted(set(numbers)) or not all(2 <= n <= len(words) for n in numbers):
        return None
    return [words[n - 1].i for n in numbers]


def _llm_prompt(sent) -> str:
    numbered = " ".join(f"[{i}] {t.text}" for i, t in enumerate((t for t in sent if not t.is_space), 1))
    return (
        f"Sentence with numbered words:\n{numbered}\n\nWhich word numbers begin a new EDU (never 1)? "
        "Reply with the numbers separated by commas, or 'none'."
    )


def build_edu_tree(
    source: Document | Chunk,
    segmenter: str = "parse",
    model: str = "smollm2-135m",
    min_words: int = 3,
    plain_headings: bool = True,
) -> EDUTree:
    """The EDU tree of a document (or of one chunk of it, with offsets into its document)."""
    return build_edu_trees([source], segmenter, model, min_words, plain_headings)[0]


def build_edu_trees(
    sources: list[Document | Chunk], segmenter: str = "parse", model: str = "smollm2-135m", min_words: int = 3, plain_headings: bool = True,
) -> list[EDUTree]:
    """:func:`build_edu_tree` of many sources, with the LLM segmenter's prompts for the sentences of
    all of them sent as one :meth:`~ragpress.core.lm.CausalLM.chat_batch` (length-sorted batches)."""
    if segmenter not in ("parse", "llm"):
        raise ValueError(f"segmenter must be 'parse' or 'llm', got {segmenter!r}.")
    plans = [_parsed(source, plain_headings) for source in sources]
    if segmenter == "llm":
        asked = [(plan, k) for plan in plans for k, (_, sent) in enumerate(plan["sents"]) if sum(not t.is_punct for t in sent) >= 2 * min_words]
        prompts = user_turns([_llm_prompt(plan["sents"][k][1]) for plan, k in asked], system=_EDU_SYSTEM)
        replies = load_causal_lm(model).chat_batch(prompts, 32, desc="LLM prompts") if prompts else []
        for (plan, k), reply in zip(asked, replies):
            from_llm = llm_boundaries(reply, plan["sents"][k][1])
            plan["cuts"][k], plan["origin"][k] = (plan["cuts"][k], "parse-fallback") if from_llm is None else (from_llm, "llm")
    return [_assembled(plan, min_words) for plan in plans]


def _parsed(source: Document | Chunk, plain_headings: bool) -> dict[str, Any]:
    """A source's blocks, the spaCy parse of its sentences and their parse boundaries."""
    if isinstance(source, Document):
        doc_id, base, text = source.id, 0, source.text
    elif isinstance(source, Chunk):
        doc_id, base, text = source.doc_id, source.start, source.text
    else:
        raise TypeError(f"build_edu_tree takes a Document or a Chunk, got {type(source).__name__}.")
    if not text.strip():
        raise ValueError("Cannot build an EDU tree of blank text.")
    blocks = _blocks(text, plain_headings)
    body = [(s, e) for s, e, h in blocks if not h]
    parsed = dict(zip(body, load_spacy(sentences_only=False).pipe([tokenizable(text[s:e]) for s, e in body], batch_size=32)))
    sents = [(b, sent) for b, doc in parsed.items() for sent in doc.sents if sent.text.strip()]
    return {"doc_id": doc_id, "base": base, "text": text, "blocks": blocks, "body": body, "sents": sents,
            "cuts": [parse_boundaries(sent) for _, sent in sents], "origin": ["parse"] * len(sents)}


def _assembled(plan: dict[str, Any], min_words: int) -> EDUTree:
    """The tree of a parsed source: sections from headings, paragraphs from blocks, sentences cut into EDUs."""
    text, blocks = plan["text"], plan["blocks"]
    sentences: dict[tuple[int, int], list[dict[str, Any]]] = {b: [] for b in plan["body"]}
    for (block, sent), cut, how in zip(plan["sents"], plan["cuts"], plan["origin"]):
        edus = [_spec("edu", block[0] + a, block[0] + b, segmenter=how) for a, b in _edu_spans(sent, cut, min_words)]
        sentences[block].append(_spec("sentence", edus[0]["start"], edus[-1]["end"], edus))

    root = _spec("document", 0, len(text), [])
    stack = [(0, root)]
    for s, e, heading in blocks:
        if heading:
            while stack[-1][0] >= heading:
                stack.pop()
            title = text[s:e].lstrip(" \t#").strip()
            line = _spec("paragraph", s, e, [_spec("sentence", s, e, [_spec("edu", s, e)])], heading=True)
            section = _spec("section", s, e, [line], title=title)
            stack[-1][1]["children"].append(section)
            stack.append((heading, section))
            continue
        if len(stack) == 1:  # text before the first heading: an untitled section any heading closes
            stack.append((7, _spec("section", s, e, [], title="")))
            root["children"].append(stack[-1][1])
        stack[-1][1]["children"].append(_spec("paragraph", s, e, sentences[(s, e)]))
    root["start"], root["end"] = _trim(text, 0, len(text))
    return EDUTree(_materialize(root, (), plan["doc_id"], plan["base"], text))


def _spec(level: str, start: int, end: int, children: list | None = None, **meta: Any) -> dict[str, Any]:
    return {"level": level, "start": start, "end": end, "children": children or [], "meta": meta}


def _materialize(spec: dict[str, Any], path: tuple[int, ...], doc_id: str, base: int, text: str) -> Chunk:
    children = tuple(_materialize(c, (*path, i), doc_id, base, text) for i, c in enumerate(spec["children"]))
    start = min([spec["start"], *(c.start - base for c in children)])
    end = max([spec["end"], *(c.end - base for c in children)])
    meta = {"level": spec["level"], "path": path, **spec["meta"]}
    return Chunk(doc_id, base + start, base + end, text[start:end], metadata=meta, children=children)
