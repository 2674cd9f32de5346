"""The baselines every chart needs: the whole context, none of it, and two blind cuts at a ratio
(random windows kept, the first windows kept), built from TokenWindowChunker and BudgetPacker."""

from __future__ import annotations

import random

from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.core.types import Context
from ragpress.eval.methods.base import Approach, Method, Prepared, Reply, generate, register_method, windows

WINDOW = 64  # tokens a baseline keeps or drops at once: small enough for a budget of 1/8 of 1K tokens


class Full(Approach):
    query_aware = False

    def respond(self, prepared: Prepared, question: str) -> Reply:
        return generate(self.setup, Context(question, (prepared.whole,), tokens_before=prepared.tokens, tokens_after=prepared.tokens))


class NoContext(Approach):
    query_aware = False

    def respond(self, prepared: Prepared, question: str) -> Reply:
        return generate(self.setup, Context(question, tokens_before=prepared.tokens, tokens_after=0))


class Blind(Approach):
    """Windows packed in source order while they fit the budget: the first ones (``shuffle=False``)
    or a seeded random draw of them."""

    query_aware = False
    shuffle = False

    def prepare(self, prepared: Prepared) -> Prepared:
        budget = self.budget(prepared.tokens)
        chunks = windows(prepared, self.setup, min(WINDOW, budget // 4))
        if self.shuffle:
            random.Random(f"{self.setup.seed}/{prepared.document.id}").shuffle(chunks)
        packer = BudgetPacker(budget=budget, order="source", tokenizer=self.setup.model)
        prepared.state = packer.run("the context", chunks)  # query-agnostic: the question is set per reply
        return prepared

    def respond(self, prepared: Prepared, question: str) -> Reply:
        return generate(self.setup, Context(question, prepared.state.pieces, tokens_before=prepared.tokens,
                                            tokens_after=prepared.state.tokens_after))


class RandomDrop(Blind):
    shuffle = True


for method in (
    Method("full", Full, "baseline", ratios=()),
    Method("none", NoContext, "baseline", ratios=()),
    Method("random_drop", RandomDrop, "baseline", note=f"random {WINDOW}-token windows kept"),
    Method("first_k", Blind, "baseline", note=f"the first {WINDOW}-token windows kept"),
):
    register_method(method)
