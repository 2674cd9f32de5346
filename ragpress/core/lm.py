"""The causal LM wrapper every method uses: tokenisation, batched log-probs, perplexity, attention of
one layer, hidden states, chat prompts (token ids, or input embeddings with soft rows spliced in) and
generation, one prompt or a left-padded batch at a time.

Models reach it through :func:`ragpress.core.loaders.load_causal_lm`; ``model`` and ``tokenizer``
stay public for methods that need the raw forward pass (KV reuse, early exit).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ragpress.core import greedy
from ragpress.core.decode import check_decode, static_generate, uses_static
from ragpress.core.device import default_batch_size, forward_batches, left_padded, padded_attention
from ragpress.core.prompt import content_spans, encode_prompt, encode_prompts, render_chat

_SAMPLING = threading.Lock()
GENERATION_ITEM_BYTES = 2**28  # one prompt in a generation batch: a few thousand tokens of KV cache and activations, generously


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Torch's random state seeded with ``seed`` inside the block and restored after it."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


class CausalLM:
    """A causal LM with the few calls the methods need: batched per-token log-probs, perplexity
    (sliding window for long text), attention of one layer, hidden states, and generation.

    ``model`` and ``tokenizer`` stay public for methods that need the raw forward pass (KV reuse,
    early exit). ``decode`` picks the generation path (:mod:`ragpress.core.decode`): ``"auto"``
    (static cache and compiled steps on CUDA, eager elsewhere), ``"eager"`` or ``"static"``; each
    generation call may override it."""

    def __init__(self, model: Any, tokenizer: Any, name: str, decode: str = "auto"):
        self.model, self.tokenizer, self.name, self.decode = model, tokenizer, name, check_decode(decode)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    def __repr__(self) -> str:
        return f"CausalLM({self.name!r}, device={self.device}, dtype={self.model.dtype})"

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def max_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    def encode(self, text: str, special_tokens: bool = False) -> list[int]:
        return self.tokenizer(text, add_special_tokens=special_tokens)["input_ids"]  # text: special-token strings stay text

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def generation_batch_size(self, given: int | None = None) -> int:
        """``given``, or the generation batch size for this model's device: 8 on the CPU, more on a
        GPU with room (:func:`~ragpress.core.device.default_batch_size`)."""
        return given or default_batch_size(self.device, 8, GENERATION_ITEM_BYTES, most=128)

    @torch.inference_mode()
    def continuation_logprobs(
        self, prefixes: Sequence[str], continuations: Sequence[str], batch_size: int | None = 8
    ) -> list[torch.Tensor]:
        """``log p(token | prefix, earlier continuation tokens)`` for every token of each
        continuation. Prefix and continuation are tokenised apart, so the boundary falls exactly
        between them; an empty prefix conditions on the BOS token when the tokenizer has one.

        Rows are sorted by length and left-padded into batches of ``batch_size`` rows (``None``:
        as many as :func:`~ragpress.core.device.token_budget` allows on this device); only the
        continuations' positions reach the LM head, and each batch comes back to the host once."""
        if len(prefixes) != len(continuations):
            raise ValueError("continuation_logprobs needs as many prefixes as continuations.")
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        heads = self.tokenizer(list(prefixes), add_special_tokens=False)["input_ids"] if prefixes else []
        tails = self.tokenizer(list(continuations), add_special_tokens=False)["input_ids"] if continuations else []
        rows = []
        for head, tail in zip(heads, tails):
            head = head or bos
            rows.append((head, tail) if head else (tail[:1], tail[1:]))
        batches = forward_batches([len(h) + len(t) for h, t in rows], batch_size, self.device, self.model.config, logits=True, dtype=self.model.dtype)
        out: list[torch.Tensor] = [torch.zeros(0)] * len(rows)
        for batch in batches:
            for i, values in zip(batch, self._score_batch([rows[i] for i in batch])):
                out[i] = values
        return out

    def _score_batch(self, rows: list[tuple[list[int], list[int]]]) -> list[torch.Tensor]:
        """Log-probs of each row's tail given its head, from one left-padded forward whose LM head
        sees only the last ``longest tail + 1`` positions (where every row's tail is predicted)."""
        ids, mask, positions = left_padded([head + tail for head, tail in rows], self.tokenizer.pad_token_id, self.device)
        keep = max(len(t) for _, t in rows)
        with padded_attention(self.device):
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep + 1).logits
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, ids.shape[1] - keep :, None])[..., 0].cpu()
        return [logprobs[r, keep - len(t) :] for r, (_, t) in enumerate(rows)]

    def token_logprobs(self, texts: Sequence[str], batch_size: int | None = 8) -> list[torch.Tensor]:
        """Per-token log-probs of each text given its own preceding tokens."""
        return self.continuation_logprobs([""] * len(texts), list(texts), batch_size)

    @torch.inference_mode()
    def perplexity(self, text: str, window: int | None = None, stride: int | None = None) -> float:
        """Perplexity of ``text``; text longer than ``window`` tokens is scored with a sliding
        window that moves by ``stride`` and conditions each new token on up to ``window`` earlier ones."""
        ids = self.encode(text)
        if len(ids) < 2:
            raise ValueError("Perplexity needs a text of at least two tokens.")
        window = min(window or self.max_length, self.max_length)
        stride = stride or max(1, window // 2)
        nll, counted, end = 0.0, 0, 1
        while end < len(ids):
            new_end = min(end + stride, len(ids))
            start = max(0, new_end - window)
            chunk = torch.tensor([ids[start:new_end]], device=self.device)
            logits = self.model(input_ids=chunk).logits[0].float()
            logprobs = torch.log_softmax(logits[:-1], -1).gather(-1, chunk[0, 1:, None])[:, 0]
            fresh = new_end - end  # tokens not yet scored
            nll -= logprobs[-fresh:].sum().item()
            counted += fresh
            end = new_end
        return math.exp(nll / counted)

    @torch.inference_mode()
    def attentions(self, text: str, layer: int) -> torch.Tensor:
        """Attention weights ``[heads, tokens, tokens]`` of ``layer`` for ``text`` (materialises
        the full matrix: for inspection, not for long contexts)."""
        ids = torch.tensor([self.encode(text, special_tokens=True)], device=self.device)
        previous = self.model.config._attn_implementation
        self.model.set_attn_implementation("eager")
        try:
            out = self.model(input_ids=ids, output_attentions=True)
        finally:
            self.model.set_attn_implementation(previous)
        return out.attentions[layer][0].float().cpu()

    @torch.inference_mode()
    def hidden_states(self, text: str) -> tuple[torch.Tensor, ...]:
        """Hidden states ``[tokens, hidden]`` of the embeddings and every layer."""
        ids = torch.tensor([self.encode(text, special_tokens=True)], device=self.device)
        out = self.model(input_ids=ids, output_hidden_states=True)
        return tuple(h[0].float().cpu() for h in out.hidden_states)

    def chat_ids(self, messages: list[dict[str, str]]) -> torch.Tensor:
        """Token ids ``[1, n]`` of ``messages`` rendered by :func:`~ragpress.core.prompt.render_chat`,
        ready for generation."""
        return torch.tensor([self.chat_ids_batch([messages])[0]])

    def chat_ids_batch(self, conversations: list[list[dict[str, str]]]) -> list[list[int]]:
        """Token ids of each conversation as :meth:`chat_ids` gives them, tokenized together."""
        rendered = [render_chat(self.tokenizer, messages) for messages in conversations]
        prompts = [(text, content_spans(text, messages)) for (text, _), messages in zip(rendered, conversations)]
        special = bool(rendered) and rendered[0][1]  # the same for every conversation: it is the tokenizer's
        return [ids for ids, _ in encode_prompts(self.tokenizer, prompts, special, offsets=False)]

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The decoder's input embeddings of ``input_ids`` (what soft compressors replace)."""
        return self.model.get_input_embeddings()(input_ids.to(self.device))

    def chat_split(self, messages: list[dict[str, str]], marker: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of the chat prompt before and after the text ``marker`` (which must occur once):
        where soft rows go. Trainers of soft compressors build their inputs from these."""
        text, special = render_chat(self.tokenizer, messages)
        if text.count(marker) != 1:
            raise ValueError(f"The prompt must hold the soft-context marker {marker!r} exactly once.")
        cut, spans = text.index(marker), content_spans(text, messages)
        head = encode_prompt(self.tokenizer, text, spans, special, end=cut)[0]
        tail = encode_prompt(self.tokenizer, text, spans, False, start=cut + len(marker))[0]
        return torch.tensor(head, dtype=torch.long), torch.tensor(tail, dtype=torch.long)

    @torch.inference_mode()
    def chat_embeds(self, messages: list[dict[str, str]], marker: str, soft: torch.Tensor) -> torch.Tensor:
        """Input embeddings ``[1, n, hidden]`` of ``messages`` under the chat template, with the
        text ``marker`` (which must occur once) replaced by the ``[m, hidden]`` rows of ``soft``."""
        hidden = self.model.config.get_text_config().hidden_size
        if soft.ndim != 2 or soft.shape[1] != hidden:
            raise ValueError(f"Soft embeddings must have shape [n, {hidden}] for {self.name!r}, got {tuple(soft.shape)}.")
        head, tail = self.chat_split(messages, marker)
        parts = [self.embed(head), soft.to(self.device, self.model.dtype), self.embed(tail)]
        return torch.cat(parts)[None]

    def chat_batch(
        self, conversations: Sequence[list[dict[str, str]]], max_new_tokens: int, batch_size: int | None = None, prefix: str = "",
        desc: str = "",
    ) -> list[str]:
        """Greedy replies to many conversations, batched (see :meth:`generate_batch`). A ``prefix``
        starts every reply before generation (and is part of the returned text): it steers small
        models into an expected answer format."""
        head = torch.tensor(self.encode(prefix), dtype=torch.long)
        prompts = [torch.cat([self.chat_ids(c)[0], head]) for c in conversations]
        replies = self.generate_batch(prompts, max_new_tokens, batch_size=batch_size, desc=desc)
        return [(prefix + self.tokenizer.decode(r, skip_special_tokens=True)).strip() for r in replies]

    @torch.inference_mode()
    def generate_batch(
        self, prompts: Sequence[torch.Tensor], max_new_tokens: int, batch_size: int | None = None, desc: str = "",
        decode: str | None = None, **kwargs: Any,
    ) -> list[torch.Tensor]:
        """Greedy new token ids for many prompts, each token ids ``[n]`` or input embeddings
        ``[n, hidden]``. Prompts of similar length are left-padded into batches (one ``generate``
        call per batch of ``batch_size``, by default :meth:`generation_batch_size`); the replies equal
        one-at-a-time greedy generation up to float rounding. ``decode`` overrides :attr:`decode` for
        this call."""
        from tqdm.auto import tqdm

        pad, batch_size = self.tokenizer.pad_token_id, self.generation_batch_size(batch_size)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        replies: list[torch.Tensor] = [torch.empty(0, dtype=torch.long)] * len(prompts)
        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, desc=desc or "generate", disable=len(starts) < 3, leave=False):
            group = [prompts[i].to(self.device) for i in order[start : start + batch_size]]
            embedded = any(p.is_floating_point() for p in group)
            if embedded:
                group = [p.to(self.model.dtype) if p.is_floating_point() else self.embed(p) for p in group]
            width = max(len(p) for p in group)
            if embedded:
                batch = torch.zeros((len(group), width, group[0].shape[1]), dtype=self.model.dtype, device=self.device)
            else:
                batch = torch.full((len(group), width), pad, dtype=torch.long, device=self.device)
            mask = torch.zeros((len(group), width), dtype=torch.long, device=self.device)
            for r, p in enumerate(group):  # left padding keeps every prompt's end at the last column
                batch[r, width - len(p) :] = p
                mask[r, width - len(p) :] = 1
            out = self._generate(batch, mask, max_new_tokens, decode, do_sample=False, pad_token_id=pad, **kwargs)
            new = out if embedded else out[:, width:]  # with input embeddings, only new tokens come back
            for r, i in enumerate(order[start : start + batch_size]):
                reply = new[r].cpu()
                stop = (reply == pad).nonzero()  # generate pads a reply that ended early
                replies[i] = reply[: int(stop[0]) + (pad == self.tokenizer.eos_token_id)] if len(stop) else reply
        return replies

    @torch.inference_mode()
    def generate(
        self, prompt: torch.Tensor, max_new_tokens: int = 128, temperature: float = 0.0, seed: int = 0,
        decode: str | None = None, **kwargs: Any,
    ) -> torch.Tensor:
        """New token ids after ``prompt``: token ids ``[1, n]``, or input embeddings ``[1, n, hidden]``
        (from :meth:`chat_embeds`). Greedy when ``temperature`` is 0; ``decode`` overrides
        :attr:`decode` for this call."""
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        prompt = prompt.to(self.device)
        mask = torch.ones(prompt.shape[:2], dtype=torch.long, device=self.device)
        # transformers samples from torch's global generator: a seeded call takes it alone, in a fork that
        # leaves the caller's state as it was, so concurrent calls each get their seed's answer
        with _SAMPLING if temperature > 0 else contextlib.nullcontext(), seeded(seed, self.device):
            out = self._generate(prompt, mask, max_new_tokens, decode, pad_token_id=self.tokenizer.pad_token_id, **sampling, **kwargs)
        # with input embeddings alone, transformers returns only the new tokens
        return out[0, 0 if prompt.is_floating_point() else prompt.shape[1] :].cpu()

    def _generate(self, prompt: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, decode: str | None, **kwargs: Any) -> torch.Tensor:
        """``model.generate`` on ``prompt`` (token ids or input embeddings) on the path ``decode`` names."""
        if uses_static(decode or self.decode, self.device):
            return static_generate(self.model, prompt, mask, max_new_tokens, **kwargs)
        given = {"inputs_embeds" if prompt.is_floating_point() else "input_ids": prompt}
        return self.model.generate(**given, attention_mask=mask, max_new_tokens=max_new_tokens, **kwargs)

    def stream(
        self, prompt: torch.Tensor, max_new_tokens: int = 128, temperature: float = 0.0, seed: int = 0,
        decode: str | None = None, **kwargs: Any,
    ) -> Iterator[str]:
        """Yield the text of the reply as it is produced, in the pieces ``TextIteratorStreamer`` cuts
        (whole words). Plain greedy eager decoding on CUDA runs :func:`~ragpress.core.greedy.greedy_text`
        in this thread; anything else runs ``generate`` in a background thread."""
        from transformers import TextIteratorStreamer

        if self.device.type in greedy.LOOP_DEVICES and temperature == 0 and not uses_static(decode or self.decode, self.device) \
                and greedy.plain_greedy(self.model, kwargs):
            yield from greedy.greedy_text(self.model, self.tokenizer, prompt.to(self.device), max_new_tokens)
            return
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        worker = threading.Thread(
            target=self.generate, args=(prompt, max_new_tokens, temperature, seed, decode), kwargs={"streamer": streamer, **kwargs}
        )
        worker.start()
        yield from streamer
        worker.join()
