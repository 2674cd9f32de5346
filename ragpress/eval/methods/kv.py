"""RetroLM: the context prefilled once into KV pages (``prepare``); each question retrieves pages
and decodes over them (Luo et al. 2025). Pages are sized so that the pages read (the first page,
the local window and ``pages_kept`` retrieved ones) hold ``tokens / ratio`` tokens."""

from __future__ import annotations

from ragpress.core.types import Context
from ragpress.eval.methods.base import Approach, Method, Prepared, Reply, register_method


class RetroLM(Approach):
    query_aware = False
    reads_in_prepare = True

    def stage(self, tokens: int):
        from ragpress.generators.retrolm import RetroLM as Stage

        budget = self.budget(tokens)
        page = max(16, min(128, budget // 4))
        return Stage(model=self.setup.model, page_size=page, local_window=page, pages_kept=max(1, budget // page - 2),
                     max_new_tokens=self.setup.max_new_tokens, decode=self.setup.decode, device=self.setup.device)

    def prepare(self, prepared: Prepared) -> Prepared:
        prepared.state = self.stage(prepared.tokens).build(prepared.document.text)
        return prepared

    def respond(self, prepared: Prepared, question: str) -> Reply:
        import torch

        paged, trace, ids = prepared.state, [], []

        def text():
            shown = ""
            for token in paged.stream_ids(paged.query_ids(question), self.setup.max_new_tokens, 0.0, 0, trace):
                ids.append(token)
                now = paged.lm.tokenizer.decode(ids, skip_special_tokens=True)
                yield now[len(shown) :]
                shown = now

        def read() -> Context:
            tokens = paged.tokens(trace[0]["pages"])
            unscored = torch.zeros(paged.prefix_len)  # spans() reads a score per context position
            return Context(question, paged.layout.spans(tokens, unscored), tokens_before=paged.prefix_len, tokens_after=len(tokens))

        return Reply(text(), read)


register_method(Method("retrolm", RetroLM, "kv", note="training-free RetroLM: KV pages retrieved while decoding"))
