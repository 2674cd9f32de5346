"""Long-document QA over Wikipedia articles: a cloze question built from one sentence of an
article, a named entity in it blanked; the answer is the entity, its span known in the context.

The articles are the sample in gensim's test data (``ragpress.corpora.wikipedia_pages``); entities
come from the bundled spaCy ``en_core_web_sm``. As RULER's QA tasks (Hsieh et al. 2024, Sec. 3.4)
pad a golden paragraph with distracting ones to reach the length, the target article (cut to at
most three quarters of the budget, at a sentence end) sits at a seeded position among other
articles, the last of which is cut at a token boundary. Deviations: the question is a cloze of a
sentence that stays in the context (an extractive test, no human-written questions), and entities
are looked for in the target's first 100,000 characters only."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ragpress.corpora import MIN_CHARS, document, wikipedia_pages
from ragpress.eval.example import Example
from ragpress.eval.registry import register
from ragpress.eval.text_fit import count_tokens, fit, prefix_tokens

LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "EVENT", "WORK_OF_ART", "DATE", "FAC", "LANGUAGE"})
BLANK = "____"
SEPARATOR = "\n\n"


@lru_cache(maxsize=1)
def articles() -> tuple[tuple[str, str], ...]:
    """``(title, text)`` of every article of the sample with at least ``MIN_CHARS`` characters, tidied."""
    rows = (document("wikipedia", title, text) for title, text, _ in wikipedia_pages())
    return tuple((row["title"], row["text"]) for row in rows if len(row["text"]) >= MIN_CHARS)


def cloze_candidates(nlp: Any, text: str) -> list[tuple[int, int, int, int]]:
    """``(sentence start, sentence end, entity start, entity end)`` character offsets of every entity
    of :data:`LABELS` that occurs once in a one-line sentence of 8 to 60 tokens."""
    found = []
    for sent in nlp(text[:100_000]).sents:
        if not 8 <= len(sent) <= 60 or "\n" in sent.text.strip():
            continue
        for ent in sent.ents:
            if ent.label_ in LABELS and len(ent.text) > 1 and sent.text.count(ent.text) == 1:
                found.append((sent.start_char, sent.end_char, ent.start_char, ent.end_char))
    return found


@dataclass(frozen=True)
class WikiCloze:
    name: str = "wiki_cloze"
    target_share: float = 0.75

    def __call__(self, n: int, context_tokens: int, seed: int, tokenizer: Any) -> list[Example]:
        from ragpress.models import load_spacy

        nlp = load_spacy(sentences_only=False)
        rng = random.Random(f"{self.name}/{seed}")
        return [self.example(i, context_tokens, rng, tokenizer, nlp) for i in range(n)]

    def example(self, index: int, context_tokens: int, rng: random.Random, tokenizer: Any, nlp: Any) -> Example:
        order = rng.sample(range(len(articles())), len(articles()))
        for pick, article in enumerate(order):
            title, text = articles()[article]
            target = prefix_tokens(tokenizer, text, int(context_tokens * self.target_share))
            cut = target.rfind(". ") + 1  # a cut article ends at a sentence end
            target = target[:cut] if 0 < cut and len(target) < len(text) else target
            candidates = cloze_candidates(nlp, target)
            if candidates:
                break
        else:
            raise ValueError("No article of gensim's Wikipedia sample has a sentence with a named entity to blank")
        s0, s1, e0, e1 = rng.choice(candidates)
        fillers = SEPARATOR.join(articles()[i][1] for i in order[pick + 1 :])
        where = rng.random()
        target_tokens = count_tokens(tokenizer, target)

        def build(size: int) -> str:
            parts = [p for p in prefix_tokens(tokenizer, fillers, size - target_tokens).split(SEPARATOR) if p]
            at = round(where * len(parts))
            return SEPARATOR.join([*parts[:at], target, *parts[at:]])

        context, measured, _ = fit(tokenizer, context_tokens, build, context_tokens * 5 // 4)
        shift = context.index(target)
        sentence = target[s0:s1]
        return Example(
            id=f"{self.name}/{index}", context=context, answers=(target[e0:e1],), task=self.name,
            question=f"Fill in the blank ({BLANK}) in this sentence from the text: {sentence[: e0 - s0]}{BLANK}{sentence[e1 - s0 :]}",
            spans=((shift + e0, shift + e1),),
            metadata={"context_tokens": measured, "title": title, "sentence": (shift + s0, shift + s1)},
        )


register("wiki_cloze")(WikiCloze())
