"""RULER's variable tracking (Hsieh et al. 2024, Sec. 3.2, Multi-hop Tracing): a chain
``VAR A = 12345``, ``VAR B = VAR A``, ... hidden in repeated noise; the answer is every variable that
ends up holding the value.

As RULER's released generator: 5-letter upper-case names, a 5-digit value, 1 chain of 4 hops, the
noise "The grass is green. ..." repeated, each assignment inserted at a sorted random position
between noise repeats. Deviations: the context is the text alone (RULER's prompt also carries a
short worked example; the prompt is the runner's), and extra chains (``chains > 1``) are
distractors whose variables are not answers, as in RULER."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

from ragpress.eval.example import Example
from ragpress.eval.registry import SeededTask, register
from ragpress.eval.text_fit import count_tokens, fit

NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."


@dataclass(frozen=True)
class VariableTracking(SeededTask):
    name: str = "variable_tracking"
    chains: int = 1
    hops: int = 4

    def example(self, index: int, context_tokens: int, rng: random.Random, tokenizer: Any) -> Example:
        per_noise = count_tokens(tokenizer, NOISE + " ")
        names: list[str] = []
        while len(names) < self.chains * (self.hops + 1):
            name = "".join(rng.choices(string.ascii_uppercase, k=5))
            names += [name] if name not in names else []
        chains = [names[c * (self.hops + 1) : (c + 1) * (self.hops + 1)] for c in range(self.chains)]
        value = str(rng.randint(10000, 99999))
        statements = [[f"VAR {chain[0]} = {rng.randint(10000, 99999) if c else value}"] for c, chain in enumerate(chains)]
        for chain, lines in zip(chains, statements):
            lines += [f"VAR {chain[j + 1]} = VAR {chain[j]}" for j in range(self.hops)]
        draws = rng.random()  # one draw fixes the insertion positions for every size the fit tries

        def build(size: int) -> str:
            noises = max(size // per_noise, self.hops + 1)
            pieces = [NOISE] * noises
            placer = random.Random(f"{draws}/{noises}")
            for lines in statements:
                slots = sorted(placer.sample(range(len(pieces) + 1), len(lines)))
                for offset, (slot, line) in enumerate(zip(slots, lines)):
                    pieces.insert(slot + offset, line + ".")
            return " ".join(pieces)

        context, measured, _ = fit(tokenizer, context_tokens, build, context_tokens * 5 // 4)
        answers = tuple(chains[0])
        spans = tuple((start, start + 5) for name in answers for start in [context.index(f"VAR {name} = ") + 4])
        return Example(
            id=f"{self.name}/{index}", context=context, answers=answers, task=self.name, spans=spans,
            question=f"Find all variables that are assigned the value {value} in the text above.",
            metadata={"context_tokens": measured, "value": value, "hops": self.hops, "chains": self.chains},
        )


register("variable_tracking")(VariableTracking())
