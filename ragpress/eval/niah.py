"""RULER's needle-in-a-haystack tasks (Hsieh et al. 2024, Sec. 3.1, Retrieval): single, multi-key,
multi-value and multi-query, on the Paul Graham essay haystack.

Each needle reads "One of the special magic numbers for {key} is: {value}." with an
``adjective-noun`` key and a 7-digit value (RULER's ``niah_*`` with word keys and number values).
Needle depths are drawn without replacement from 40 evenly spaced depths and each needle goes in
at a sentence boundary, as in RULER's released generator. Deviations: the context is the haystack
alone (the prompt and its "I will quiz you" preamble are the runner's), the question is RULER's
query sentence, and sentences are split by punctuation rather than nltk."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ragpress.eval.example import Example
from ragpress.eval.registry import SeededTask, register
from ragpress.eval.text_fit import essay_text, fit, prefix_tokens, sentences
from ragpress.eval.words import key_word

NEEDLE = "One of the special magic numbers for {key} is: {value}."
DEPTHS = [round(i * 100 / 39) for i in range(40)]


@dataclass(frozen=True)
class Niah(SeededTask):
    """A NIAH variant: ``keys`` needle keys (the others are distractors), ``values`` values per
    key, ``queries`` keys asked about; every queried value is an answer (scored by string_match_all)."""

    name: str
    keys: int = 1
    values: int = 1
    queries: int = 1

    def example(self, index: int, context_tokens: int, rng: random.Random, tokenizer: Any) -> Example:
        keys: list[str] = []
        while len(keys) < self.keys:
            key = key_word(rng)
            keys += [key] if key not in keys else []
        values = {key: [str(rng.randint(10**6, 10**7 - 1)) for _ in range(self.values)] for key in keys}
        needles = [NEEDLE.format(key=key, value=value) for key in keys for value in values[key]]
        rng.shuffle(needles)
        depths = sorted(rng.sample(DEPTHS, len(needles)))
        queried = rng.sample(keys, self.queries)

        def build(size: int) -> str:
            return insert(sentences(prefix_tokens(tokenizer, essay_text(), size)), needles, depths)

        context, measured, _ = fit(tokenizer, context_tokens, build, context_tokens * 5 // 4)
        answers = tuple(value for key in queried for value in values[key])
        spans = tuple((start, start + len(value)) for value in answers for start in [context.index(f"is: {value}.") + 4])
        return Example(
            id=f"{self.name}/{index}", context=context, question=question(queried, len(answers)), answers=answers,
            task=self.name, spans=spans, metadata={"context_tokens": measured, "depths": depths, "keys": keys},
        )


def insert(haystack: list[str], needles: list[str], depths: list[int]) -> str:
    """The sentences with each needle before the sentence at its depth (percent of the sentences)."""
    cuts = [0, *(len(haystack) * depth // 100 for depth in depths), len(haystack)]
    pieces: list[str] = []
    for i, needle in enumerate(needles):
        pieces += [*haystack[cuts[i] : cuts[i + 1]], needle]
    return " ".join([*pieces, *haystack[cuts[-2] :]])


def question(queried: list[str], answers: int) -> str:
    """RULER's query, singular when one value is asked for."""
    keys = queried[0] if len(queried) == 1 else ", ".join(queried[:-1]) + ", and " + queried[-1]
    if answers == 1:
        return f"What is the special magic number for {keys} mentioned in the provided text?"
    return f"What are all the special magic numbers for {keys} mentioned in the provided text?"


# RULER's multi-key, multi-value and multi-query settings use 4 of each (Sec. 3.1).
for variant in (Niah("niah_single"), Niah("niah_multikey", keys=4), Niah("niah_multivalue", values=4), Niah("niah_multiquery", keys=4, queries=4)):
    register(variant.name)(variant)
