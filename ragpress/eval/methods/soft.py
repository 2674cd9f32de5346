"""Soft compression for the answering model, query-agnostic: the context becomes embeddings once
(``prepare``) and every question is answered from them. CompLLM's shipped adapters are trained at
ratio 2, ARC-Encoder's at pooling 4 and 8, both for SmolLM2-135M only."""

from __future__ import annotations

from ragpress.eval.methods.base import Approach, Method, Prepared, Reply, generate, register_method, with_query


class Soft(Approach):
    query_aware = False
    reads_in_prepare = True

    def stage(self):
        raise NotImplementedError

    def prepare(self, prepared: Prepared) -> Prepared:
        prepared.state = self.stage().run("the context", [prepared.whole])  # query-agnostic: set per reply
        return prepared

    def respond(self, prepared: Prepared, question: str) -> Reply:
        return generate(self.setup, with_query(prepared.state, question))


class CompLLM(Soft):
    def stage(self):
        from ragpress.compressors.compllm import CompLLM as Stage

        return Stage(decoder=self.setup.model, ratio=self.ratio, device=self.setup.device)


class ArcEncoder(Soft):
    def stage(self):
        from ragpress.compressors.arc_encoder import ArcEncoder as Stage

        return Stage(decoder=self.setup.model, ratio=int(self.ratio), device=self.setup.device)


for method in (
    Method("compllm", CompLLM, "soft", ratios=(2,), note="shipped adapters for smollm2-135m, trained at ratio 2"),
    Method("arc_encoder", ArcEncoder, "soft", ratios=(4, 8), note="shipped arc-smollm2, trained at pooling 4 and 8"),
):
    register_method(method)
