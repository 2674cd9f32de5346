"""RetroLM: retrieval over the KV cache's pages instead of text chunks (Luo et al., 2025, "Does RAG
Really Perform Bad For Long-Context Processing?", arXiv:2502.11444; AAAI 2026 as "RetroLM:
Retrieval-Augmented KVs for Long-Context Processing"). No official code was found; this follows the
paper's abstract and method outline (KV-level retrieval over contiguous pages, a page retriever,
decoding over the retrieved pages); the method section's exact hyper-parameters were not readable
here, so the defaults below are ours and say so.

The steps, training-free:

1. **Paging the KV cache** (Sec. 3, "KV-level retrieval augmentation"): the long context (the prompt
   up to and including the sources) is encoded *once*, in chunks of ``prefill_tokens`` (whole pages; by
   default as large as free GPU memory allows, often the whole context)
   on the growing :class:`~transformers.DynamicCache`, so activations are bounded by one chunk while
   every page sees all earlier ones (exact encoding); the pages are then cut from the cache. The KV
   pages move to CPU memory (``offload``) and are reused by every query (build once, query many times).
2. **Page summaries** (in place of the paper's *bookmark tokens*): per layer, KV head and page, the
   mean of the page's post-RoPE keys. Why this one: the score of a query ``q`` against it is exactly
   the mean attention logit of ``q`` over the page's tokens (``q . mean(k) = mean(q . k)``), so the
   summary ranks pages by the attention the model itself would pay them, and it needs no training. A
   bookmark token's key is *trained* (post-training, Sec. 3.3) to summarise its page; the last token's
   key, the untrained stand-in, only summarises what precedes it in the model's own usage.
3. **Page retrieval** (Sec. 3.2, "page retriever"): the query runs over the fixed pages (the first
   page, which holds the instructions and the attention sink, plus the ``local_window``); each layer's
   query vectors (post-RoPE, every query token) score every candidate page summary; per layer, head and
   query token the scores are soft-maxed over pages (an estimated attention distribution), then summed,
   and the ``pages_kept`` best pages are retrieved.
4. **Decoding over retrieved pages** (Sec. 3.2): the cache is rebuilt from the retrieved and fixed
   pages *in their original order with their original RoPE positions* (keys are stored rotated; new
   tokens get ``position_ids`` of the full context), the query is run again over it, and generation
   proceeds. Every ``reselect_every`` new tokens the pages are re-scored with the latest token's query
   vectors and swapped if the choice changed (the paper retrieves again as generation proceeds); the
   query and generated tokens keep their KV. On a GPU (``decode``) this cache is preallocated and
   the steps run compiled (:mod:`ragpress.generators.retrolm.static_pages`), with the same tokens.

What the paper's training adds, and we do not have: bookmark tokens appended to each page and a
page retriever fine-tuned (contrastive, with a retrieval-specific adapter) to embed pages and queries
for retrieval, and unsupervised post-training so the LLM learns to read fragmented, retrieved KV pages.
Training-free, the model reads pages it was never trained to see out of context; the first page (the
attention sink) is therefore always kept, a deviation from a pure top-k. Sliding-window and hybrid
attention models are out of scope (full-attention Llama/Qwen2/Mistral-style decoders).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
from transformers import DynamicCache

from ragpress.core.decode import check_decode, uses_static
from ragpress.core.kv_cache import cache_argument
from ragpress.core.lm import CausalLM
from ragpress.core.prompt import PromptLayout, chat_messages, encode_prompt, render_chat
from ragpress.core.stage import check_query
from ragpress.core.types import Answer, Context
from ragpress.generators.retrolm.capture import QueryCapture
from ragpress.generators.retrolm.prefill import encode_pages
from ragpress.generators.retrolm.static_pages import gather_pages, queue_next, static_page_cache, swap_pages

_SENTINEL = "\u2063RETROLM_QUERY\u2063"  # stands in for the query when the reusable prefix is rendered


@dataclasses.dataclass
class RetroLMSettings:
    """Settings of RetroLM (the paper's exact page size and budget were not available; see module)."""

    model: str = "smollm2-135m"
    page_size: int = 128  # tokens per KV page
    pages_kept: int = 8  # pages retrieved per selection, besides the fixed pages
    local_window: int = 256  # last context tokens always attended (rounded up to whole pages)
    reselect_every: int = 16  # re-retrieve pages every this many new tokens (0: select once)
    offload: bool = True  # keep the paged KV store in CPU memory between queries
    prefill_tokens: int | None = None  # context tokens per prefill forward (memory and speed, not results); None: as free memory allows
    decode: str = "auto"  # decode path (ragpress.core.decode): static cache + compiled steps on CUDA, eager elsewhere
    device: str | None = None

    def check_settings(self) -> None:
        check_decode(self.decode)
        for name in ("page_size", "pages_kept", "prefill_tokens"):
            value = getattr(self, name)
            if name == "prefill_tokens" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RetroLM {name} must be a positive integer, got {value!r}.")
        for name in ("local_window", "reselect_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"RetroLM {name} must be a non-negative integer, got {value!r}.")


@dataclasses.dataclass
class PagedContext:
    """A long context encoded once into KV pages; :meth:`answer` asks it any number of queries."""

    settings: RetroLMSettings
    lm: CausalLM
    layout: PromptLayout  # the prompt rendered with a placeholder query; ids cut to the prefix
    prefix_len: int  # context tokens (system prompt, sources)
    suffix_template: str  # the rendered prompt after the sources, with the placeholder query
    keys: list[torch.Tensor]  # per layer [1, kv_heads, prefix_len, head_dim], RoPE applied
    values: list[torch.Tensor]
    summaries: torch.Tensor  # [layers, kv_heads, pages, head_dim] float32 mean keys, on the model's device

    @property
    def num_pages(self) -> int:
        return self.summaries.shape[2]

    def page_span(self, page: int) -> tuple[int, int]:
        """Token positions ``[start, end)`` of ``page`` in the context."""
        start = page * self.settings.page_size
        return start, min(start + self.settings.page_size, self.prefix_len)

    def tokens(self, pages: list[int]) -> torch.Tensor:
        """Context positions of the tokens of ``pages``, in order."""
        return torch.cat([torch.arange(*self.page_span(p)) for p in pages])

    @property
    def fixed_pages(self) -> list[int]:
        """Always attended: the first page (instructions, attention sink) and the local window."""
        local = -(-self.settings.local_window // self.settings.page_size)
        return sorted({0, *range(max(self.num_pages - local, 0), self.num_pages)})

    def score_pages(self, queries: list[torch.Tensor]) -> torch.Tensor:
        """Step 3: every page's score, ``sum over layers, heads, query tokens of softmax_pages(q . mean_k)``."""
        total = torch.zeros(self.num_pages, device=self.summaries.device)
        for layer, q in enumerate(queries):
            logits = q[0] @ self.summaries[layer].transpose(-1, -2)  # [kv_heads, rows, pages]
            total += logits.softmax(-1).sum(dim=(0, 1))
        return total.cpu()

    def select(self, scores: torch.Tensor | None) -> list[int]:
        """Fixed pages plus the ``pages_kept`` best-scoring others, in context order."""
        fixed = self.fixed_pages
        candidates = [p for p in range(self.num_pages) if p not in fixed]
        if scores is None or len(candidates) <= self.settings.pages_kept:
            return sorted(fixed + candidates)
        ranked = scores[candidates].topk(self.settings.pages_kept).indices.tolist()
        return sorted(fixed + [candidates[i] for i in ranked])

    def _pages_kv(self, pages: list[int], layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.tokens(pages)
        return gather_pages(self.keys[layer], index, self.lm.device), gather_pages(self.values[layer], index, self.lm.device)

    def _cache(self, pages: list[int], tail: DynamicCache | None = None, tail_from: int = 0) -> DynamicCache:
        """Step 4: the KV of ``pages`` in order (then ``tail``'s entries from ``tail_from`` on)."""
        cache = DynamicCache()
        for layer in range(len(self.keys)):
            k, v = self._pages_kv(pages, layer)
            if tail is not None:
                k = torch.cat([k, tail.layers[layer].keys[:, :, tail_from:]], dim=2)
                v = torch.cat([v, tail.layers[layer].values[:, :, tail_from:]], dim=2)
            cache.update(k, v, layer)
        return cache

    def _forward(self, ids: torch.Tensor, cache: Any, position: int, call: Any = None) -> torch.Tensor:
        """Last-row logits of ``ids`` fed at context positions ``position, position + 1, ...`` (through
        ``call``, a compiled forward, when given)."""
        positions = torch.arange(position, position + ids.shape[-1], device=self.lm.device)[None]
        out = (call or self.lm.model)(input_ids=ids.to(self.lm.device)[None], position_ids=positions, use_cache=True, logits_to_keep=1,
                                      **cache_argument(self.lm.model, cache))
        return out.logits[0, -1].float()

    def query_ids(self, query: str) -> torch.Tensor:
        head, _, tail = self.suffix_template.partition(_SENTINEL)
        query = check_query(query)
        content = (0, len(head) + len(query))  # the end of the user's turn: the question is text, the template after it is not
        ids = torch.tensor(encode_prompt(self.lm.tokenizer, head + query + tail, [content], False)[0], dtype=torch.long)
        budget = self.settings.pages_kept * self.settings.page_size
        if len(ids) > budget:
            raise ValueError(
                f"The query takes {len(ids)} tokens, more than the page budget pages_kept * page_size = {budget}: "
                "RetroLM would read more query than context. Shorten the query or raise pages_kept / page_size."
            )
        return ids

    def _forward_capturing(self, ids: torch.Tensor, cache: Any, position: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`_forward` (eagerly) with the query vectors of every layer captured for scoring."""
        capture = QueryCapture(self.lm.model)
        try:
            return self._forward(ids, cache, position), capture.take()
        finally:
            capture.close()

    @torch.inference_mode()
    def stream_ids(self, ids: torch.Tensor, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0, trace: list | None = None) -> Iterator[int]:
        """Token ids generated after the query's ids ``[q]`` (:meth:`query_ids`); ``trace`` (if
        given) receives ``{"step", "pages", "scores"}`` per selection. On the static path
        (``settings.decode``) the pages sit in a preallocated cache (:mod:`.static_pages`) and the
        steps that no selection reads run compiled on CUDA; the tokens are the eager loop's."""
        generator = torch.Generator().manual_seed(seed)
        scores = None
        if self.num_pages - len(self.fixed_pages) > self.settings.pages_kept:
            scores = self.score_pages(self._forward_capturing(ids, self._cache(self.fixed_pages), self.prefix_len)[1])  # over the fixed pages
        pages = self.select(scores)
        if trace is not None:
            trace.append({"step": 0, "pages": pages, "scores": scores})
        kept, static = len(self.tokens(pages)), uses_static(self.settings.decode, self.lm.device)
        cache = static_page_cache(self.lm.model, self._pages_kv, pages, kept, len(ids) + max_new_tokens) if static else self._cache(pages)
        step_call = self.lm.model.get_compiled_call(None) if static and self.lm.device.type == "cuda" else None
        every = self.settings.reselect_every
        reads = lambda step: bool(scores is not None and every and (step + 1) % every == 0)
        # only the passes whose query vectors a re-selection reads run eagerly with capture hooks
        logits, queries = self._forward_capturing(ids, cache, self.prefix_len) if reads(0) else (self._forward(ids, cache, self.prefix_len), None)
        position = self.prefix_len + len(ids)
        eos = self.lm.tokenizer.eos_token_id
        for step in range(1, max_new_tokens + 1):
            # greedy on the static path: a plain next step is queued before the host reads this token
            ahead = static and temperature == 0 and step < max_new_tokens and not reads(step - 1) and not reads(step)
            if temperature > 0:
                token = int(torch.multinomial((logits / temperature).softmax(-1).cpu(), 1, generator=generator))
            elif ahead:
                token, logits = queue_next(logits, lambda ids, at=position: self._forward(ids, cache, at, step_call))
                position += 1
            else:
                token = int(logits.argmax())
            yield token
            if token == eos or step == max_new_tokens:
                return
            if ahead:
                continue
            if reads(step - 1):
                new_pages = self.select(self.score_pages(queries))  # the latest token's query vectors
                if new_pages != pages:
                    if static:
                        swap_pages(cache, self._pages_kv, pages, new_pages, lambda p: len(range(*self.page_span(p))))
                    else:
                        cache, kept = self._cache(new_pages, cache, kept), len(self.tokens(new_pages))
                    pages = new_pages
                    if trace is not None:
                        trace.append({"step": step, "pages": pages, "scores": None})
            token_ids = torch.tensor([token])
            if reads(step):
                logits, queries = self._forward_capturing(token_ids, cache, position)
            else:
                logits = self._forward(token_ids, cache, position, step_call)
            position += 1

    def answer(self, query: str, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0) -> Answer:
        """Answer ``query`` over the retrieved pages; the answer's context holds the source spans of the
        pages read at the first selection, and ``metadata["trace"]`` every selection."""
        trace: list[dict[str, Any]] = []
        ids = self.query_ids(query)
        new = list(self.stream_ids(ids, max_new_tokens, temperature, seed, trace))
        first = trace[0]["pages"]
        tokens = self.tokens(first)
        page_scores = torch.zeros(self.prefix_len)
        if trace[0]["scores"] is not None:
            page_scores = trace[0]["scores"].repeat_interleave(self.settings.page_size)[: self.prefix_len]
        read = Context(
            query=query,
            pieces=self.layout.spans(tokens, page_scores),
            tokens_before=self.prefix_len,
            tokens_after=len(tokens),
            metadata={"method": "retrolm", "pages": self.num_pages, "trace": [{k: t[k] for k in ("step", "pages")} for t in trace]},
        )
        text = self.lm.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Answer(text, read, self.lm.name, prompt_tokens=len(tokens) + len(ids), completion_tokens=len(new))


@torch.inference_mode()
def build_paged_context(settings: RetroLMSettings, lm: CausalLM, context: Context, system_prompt: str) -> PagedContext:
    """Steps 1-2: render the prompt as every ragpress generator does, with a placeholder query, and
    encode everything before the question page by page (chunked prefill) into KV pages and summaries."""
    settings.check_settings()
    messages = chat_messages(Context(query=_SENTINEL, pieces=context.pieces), system_prompt)
    layout = PromptLayout.build(lm, messages, context.pieces)
    question = "\n\nQuestion: " + _SENTINEL
    prompt_text = render_chat(lm.tokenizer, messages)[0]
    cut_char = prompt_text.rindex(question)
    prefix_len = int((layout.offsets[:, 1] <= cut_char).sum())
    if prefix_len < settings.page_size:
        raise ValueError(
            f"The context has {prefix_len} tokens, fewer than one page of {settings.page_size}: nothing to retrieve. "
            "Use a smaller page_size or a plain generator."
        )
    suffix_template = prompt_text[int(layout.offsets[prefix_len - 1, 1]) :]
    layout = dataclasses.replace(layout, ids=layout.ids[:prefix_len], offsets=layout.offsets[:prefix_len], owner=layout.owner[:prefix_len])
    keys, values, summaries = encode_pages(lm, layout.ids, settings.page_size, settings.offload, settings.prefill_tokens)
    return PagedContext(settings, lm, layout, prefix_len, suffix_template, keys, values, summaries)
