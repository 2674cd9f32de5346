"""RULER's common-words extraction (Hsieh et al. 2024, Sec. 3.3, Aggregation): a numbered list of
words in which 10 words appear 30 times each and every other word 3 times; the answer is the 10
common words (scored by string_match_all).

As RULER's released generator: words from wonderwords' nouns, adjectives and verbs, the list
shuffled and written "1. word 2. word ...", the number of uncommon words grown to fill the length.
Deviation: the context is the list alone (the instructions are the runner's prompt)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ragpress.eval.example import Example
from ragpress.eval.registry import SeededTask, register
from ragpress.eval.text_fit import count_tokens, fit
from ragpress.eval.words import plain_words


@dataclass(frozen=True)
class CommonWords(SeededTask):
    name: str = "common_words"
    common: int = 10
    common_freq: int = 30
    uncommon_freq: int = 3

    def example(self, index: int, context_tokens: int, rng: random.Random, tokenizer: Any) -> Example:
        words = rng.sample(plain_words(), len(plain_words()))
        common = words[: self.common]
        sample = numbered(common * self.common_freq + words[self.common : self.common + 200] * self.uncommon_freq)
        per_item = count_tokens(tokenizer, sample) / (self.common * self.common_freq + 200 * self.uncommon_freq)
        order = rng.random()  # one draw fixes the shuffle for every size the fit tries
        most = len(words) - self.common

        def build(size: int) -> str:
            uncommon = words[self.common : self.common + min(most, max(0, int(size / per_item) // self.uncommon_freq - self.common * self.common_freq // self.uncommon_freq))]
            items = common * self.common_freq + uncommon * self.uncommon_freq
            random.Random(f"{order}/{len(items)}").shuffle(items)
            return numbered(items)

        context, measured, _ = fit(tokenizer, context_tokens, build, context_tokens * 5 // 4)
        return Example(
            id=f"{self.name}/{index}", context=context, answers=tuple(common), task=self.name,
            question=f"What are the {self.common} most common words in the above list?",
            metadata={"context_tokens": measured, "common_freq": self.common_freq, "uncommon_freq": self.uncommon_freq},
        )


def numbered(items: list[str]) -> str:
    return " ".join(f"{i}. {item}" for i, item in enumerate(items, 1))


register("common_words")(CommonWords())
