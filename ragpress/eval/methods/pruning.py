"""Query-aware text pruning, each an existing compressor stage run per question on the context,
then the answering model: Provence (sentences kept above its threshold: no ratio), EDU sub-tree
selection, LongCodeZip (code only) and GemFilter's early-layer selection at ``tokens / ratio``."""

from __future__ import annotations

from ragpress.eval.methods.base import Approach, Method, Prepared, Reply, generate, register_method


class Pruning(Approach):
    reads_per_question = True

    def compressor(self, prepared: Prepared):
        raise NotImplementedError

    def chunks(self, prepared: Prepared):
        return [prepared.whole]

    def prepare(self, prepared: Prepared) -> Prepared:
        prepared.state = self.chunks(prepared)
        return prepared

    def respond(self, prepared: Prepared, question: str) -> Reply:
        return generate(self.setup, self.compressor(prepared).run(question, prepared.state))


class Provence(Pruning):
    """The shipped provence-minilm at the paper's threshold 0.1, over paragraphs of at most 200 tokens."""

    def chunks(self, prepared: Prepared):
        from ragpress.chunkers.sentence import SentenceChunker

        return SentenceChunker().chunk(prepared.document)

    def compressor(self, prepared: Prepared):
        from ragpress.compressors.provence import Provence as Stage

        return Stage(tokenizer=self.setup.model, device=self.setup.device)


class EDU(Pruning):
    def compressor(self, prepared: Prepared):
        from ragpress.compressors.edu_select import EDUSelectCompressor

        return EDUSelectCompressor(budget=self.budget(prepared.tokens), tokenizer=self.setup.model)


class LongCodeZip(Pruning):
    def compressor(self, prepared: Prepared):
        from ragpress.compressors.longcodezip import LongCodeZip as Stage

        return Stage(model=self.setup.model, ratio=float(self.ratio), device=self.setup.device)


class GemFilter(Pruning):
    def compressor(self, prepared: Prepared):
        from ragpress.compressors.gemfilter import GemFilter as Stage

        return Stage(model=self.setup.model, budget=self.budget(prepared.tokens), device=self.setup.device)


for method in (
    Method("provence", Provence, "pruning", ratios=(), note="provence-minilm, threshold 0.1; sets its own ratio"),
    Method("edu_select", EDU, "pruning", note="EDU sub-trees ranked by MiniLM under the budget"),
    Method("longcodezip", LongCodeZip, "pruning", tasks=("code",), note="coarse functions + fine blocks by the answering model's perplexity"),
    Method("gemfilter", GemFilter, "kv", note="GemFilter's selection (filter layer of the answering model) as source spans, re-read by it"),
):
    register_method(method)
