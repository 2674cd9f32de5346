"""Training data for Provence: LLM silver labels for any corpus (the paper's recipe) and questions
made by construction from real text (how the shipped checkpoint was trained).

* :func:`silver_rows` follows Chirkova et al. (arXiv 2501.16214), Sec. 3.2 and the released
  ``gen_silver_labeling_provence.py``: the passage's sentences are numbered ``[0] ... [1] ...``, an
  instruction-tuned LLM answers the question citing the sentences it used (or says "No answer"),
  and the cited sentences become the positive labels; replies that cite nothing and do not say
  "No answer" are skipped. The paper used Llama-3-8B-Instruct; our default is the bundled
  SmolLM2-135M, far weaker: pass a larger ``lm`` for usable labels.
* :func:`constructed_rows` needs no LLM: it picks a sentence holding a named entity, writes a
  keyword question whose answer is that entity (wh-word by entity type + some of the sentence's other
  content words), and labels that sentence 1 and its neighbours in the passage 0; a share of rows
  pairs the question with another passage of the same article (all 0: a hard negative). The rerank
  target is 1 for a passage holding the answer sentence, else 0 (no teacher reranker offline).
* :func:`wikipedia_documents` reads the Wikipedia articles of :mod:`ragpress.corpora` (gensim's test data,
  ``pip install gensim``), split by the corpus's one held-out rule.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ragpress import corpora
from ragpress.chunkers.sentence import split_sentences
from ragpress.core.bundled import SPACY_MODEL
from ragpress.core.loaders import load_causal_lm, load_spacy
from ragpress.core.types import Document

WH = {"PERSON": "who", "NORP": "which group", "ORG": "which organization", "GPE": "where", "LOC": "where", "FAC": "where",
      "DATE": "when", "TIME": "when", "CARDINAL": "how many", "QUANTITY": "how much", "PERCENT": "what percentage",
      "MONEY": "how much money", "EVENT": "which event", "WORK_OF_ART": "which work", "LANGUAGE": "which language",
      "PRODUCT": "which product", "LAW": "which law", "ORDINAL": "which"}
CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ", "NUM"}
PROMPT = (
    "Question: {question}\n\nContext:\n{context}\n\nAnswer the Question, using ONLY information provided in the Context. "
    "If no useful information is provided, you MUST output \"No answer\". If some parts of the Context are used to answer, "
    "you MUST cite ALL the corresponding sentences. Use the symbols [ ] to indicate when a fact comes from a sentence in "
    "the context, e.g [0] for a fact from sentence 0. You should only answer the given question."
)


def wikipedia_documents(split: str | None = None, corpus: str | None = None, min_chars: int = 2000) -> list[Document]:
    """The Wikipedia articles of the corpus (:mod:`ragpress.corpora`, ``split`` "train" or "heldout" by
    its held-out rule; all when None) as prose paragraphs (:func:`clean_wiki`) of at least
    ``min_chars`` characters, one Document per article (id as in the corpus, ``metadata["title"]``)."""
    docs = []
    for row in corpora.load(corpus):
        if row["source"] != "wikipedia" or (split is not None and row["split"] != split):
            continue
        text = clean_wiki(row["text"])
        if len(text) >= min_chars:
            docs.append(Document(text, id=row["id"], metadata={"title": row["title"]}))
    return docs


def clean_wiki(text: str) -> str:
    """Prose paragraphs of filtered wiki text: drops headings, lists, table and file leftovers."""
    keep = []
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.replace("'''", "").replace("''", "").split())
        if len(block) >= 120 and not re.search(r"[|{}=]|^\W|thumb", block) and block.count(".") >= 2:
            keep.append(block)
    return "\n\n".join(keep)


def constructed_rows(documents: Sequence[Document], seed: int = 0, passage_sentences: tuple[int, int] = (4, 9),
                     negative_share: float = 0.3, questions_per_passage: int = 1, spacy_model: str = SPACY_MODEL) -> list[dict[str, Any]]:
    """Question/passage/label rows made by construction (module docstring), up to
    ``questions_per_passage`` (each on a different sentence) per passage. Each row also records
    ``doc_id``, ``start`` (the passage's offset in the document) and ``answer_sentence`` (index, or None)."""
    rng = random.Random(seed)
    nlp = load_spacy(spacy_model, sentences_only=False)
    rows: list[dict[str, Any]] = []
    for doc in documents:
        spans = split_sentences(doc.text, spacy_model)
        passages, i = [], 0
        while i < len(spans):
            n = rng.randint(*passage_sentences)
            if len(spans[i : i + n]) >= 3:
                passages.append(spans[i : i + n])
            i += n
        parsed = list(nlp.pipe(doc.text[a:b] for group in passages for a, b in group))
        cursor = 0
        for p, group in enumerate(passages):
            sents, cursor = parsed[cursor : cursor + len(group)], cursor + len(group)
            candidates = [(j, e) for j, s in enumerate(sents) if 30 <= len(s.text) <= 400 for e in s.ents if e.label_ in WH]
            rng.shuffle(candidates)
            used: set[int] = set()
            for j, ent in candidates:
                question = None if j in used or len(used) >= questions_per_passage else _question(sents[j], ent, rng)
                if question:
                    used.add(j)
                    rows.append(_row(doc, group, question, j, ent.text))
                    others = [q for q in range(len(passages)) if q != p]
                    if others and rng.random() < negative_share:
                        rows.append(_row(doc, passages[rng.choice(others)], question, None, ent.text))
    rng.shuffle(rows)
    return rows


def _question(sent, ent, rng: random.Random) -> str | None:
    words = [t.lemma_ if t.pos_ == "VERB" else t.text for t in sent
             if t.pos_ in CONTENT_POS and not t.is_stop and not (ent.start <= t.i < ent.end) and t.text.isalnum()]
    if len(words) < 3:
        return None
    kept = sorted(rng.sample(range(len(words)), max(2, round(0.6 * len(words)))))[:8]
    return f"{WH[ent.label_]} {' '.join(words[k] for k in kept)}?"


def _row(doc: Document, group: list[tuple[int, int]], question: str, answer: int | None, answer_text: str) -> dict[str, Any]:
    start = group[0][0]
    return {"query": question, "passage": doc.text[start : group[-1][1]],
            "sentence_spans": [[a - start, b - start] for a, b in group],
            "sentence_labels": [int(j == answer) for j in range(len(group))],
            "rerank_score": float(answer is not None), "doc_id": doc.id, "start": start,
            "answer_sentence": answer, "answer": answer_text}


def silver_rows(pairs: Iterable[tuple[str, str]], lm: str = "smollm2-135m", batch_size: int = 8, max_new_tokens: int = 128,
                spacy_model: str = SPACY_MODEL) -> list[dict[str, Any]]:
    """LLM silver labels (module docstring) for ``(query, passage)`` pairs; rows the LLM answered
    without citing a sentence and without "No answer" are left out, as in the released script."""
    pairs = list(pairs)
    spans = [split_sentences(passage, spacy_model) for _, passage in pairs]
    prompts = [
        [{"role": "user", "content": PROMPT.format(question=q, context=" ".join(f"[{i}] {p[a:b]}" for i, (a, b) in enumerate(s)))}]
        for (q, p), s in zip(pairs, spans)
    ]
    replies = load_causal_lm(lm).chat_batch(prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, desc="Silver labels")
    rows = []
    for (query, passage), s, reply in zip(pairs, spans, replies):
        cited = {int(n) for group in re.findall(r"\[([\d, ]+)\]", reply) for n in re.findall(r"\d+", group)}
        if "no answer" not in reply.lower() and not cited & set(range(len(s))):
            continue
        labels = [0] * len(s) if "no answer" in reply.lower() else [int(i in cited) for i in range(len(s))]
        rows.append({"query": query, "passage": passage, "sentence_spans": [list(x) for x in s], "sentence_labels": labels,
                     "llm_reply": reply})
    return rows


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
