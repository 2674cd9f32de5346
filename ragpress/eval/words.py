"""The word lists RULER draws keys and list items from: wonderwords' nouns, adjectives and verbs
(Hsieh et al. 2024, Sec. 3; its released code reads the same package's lists)."""

from __future__ import annotations

import random
from functools import lru_cache
from importlib import resources

from ragpress.core.extras import require


@lru_cache(maxsize=None)
def word_list(kind: str) -> tuple[str, ...]:
    """The sorted, distinct words of wonderwords' ``kind`` list (``noun``, ``adjective`` or ``verb``)."""
    require("wonderwords", what="RULER's word lists")
    text = (resources.files("wonderwords") / "assets" / f"{kind}list.txt").read_text()
    return tuple(sorted({word.strip() for word in text.splitlines() if word.strip().isalpha() and word.strip().islower()}))


def key_word(rng: random.Random) -> str:
    """A random ``adjective-noun`` pair, a needle key of RULER's NIAH tasks."""
    return f"{rng.choice(word_list('adjective'))}-{rng.choice(word_list('noun'))}"


@lru_cache(maxsize=1)
def plain_words() -> tuple[str, ...]:
    """Nouns, adjectives and verbs together, the items of RULER's common-words lists."""
    return tuple(sorted({*word_list("noun"), *word_list("adjective"), *word_list("verb")}))
