"""Greedy decoding as a plain loop in the caller's thread: the eager streaming path of
:meth:`ragpress.core.lm.CausalLM.stream`.

Why: streaming through ``model.generate`` needs a background thread and a ``TextIteratorStreamer``,
and each decoding step then pays for generate's own machinery (mask update, logits processors,
stopping criteria) and two thread switches. On a decoding step whose compute is negligible (SmolLM2's
30 layers at width 48 on the CPU) that was 12.3 ms a step against 7.8 ms for this loop; on the H200,
where SmolLM2-135M's eager step is launch-bound, the eval harness measured 55-70 ms a token through
the thread and 31-36 ms through RetroLM's own loop, a loop like this one. The tokens are generate's
greedy tokens (tests/core/test_greedy.py checks them), so only the time changes.

It runs on CUDA only (:data:`LOOP_DEVICES`): on the CPU it measured no faster (a 30-layer stand-in at one torch
thread: 8.7 against 9.4 ms a token), and on a shared 2-core host, where torch's two threads in the main thread
contend (a 1K-token forward took 5.5 s there against 0.23 s in a worker thread, which ran it on one), far slower.

The loop applies no logits processor, so it stands in for ``generate`` only when greedy decoding
would apply none either: :func:`plain_greedy` says when.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from ragpress.core.kv_cache import cache_argument

LOOP_DEVICES = ("cuda",)  # device types whose plain greedy eager streaming runs greedy_text

# generation settings that add a logits processor or a stopping rule to generate's greedy search, and
# the values that add none (unset is None in transformers 5.24, the neutral value in earlier versions)
NEUTRAL = {
    "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "min_length": 0, "min_new_tokens": 0,
    "bad_words_ids": None, "suppress_tokens": None, "begin_suppress_tokens": None, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "sequence_bias": None, "exponential_decay_length_penalty": None, "stop_strings": None, "max_time": None,
}


def plain_greedy(model: Any, settings: dict[str, Any]) -> bool:
    """Whether ``generate(do_sample=False, **settings)`` on ``model`` is plain greedy search: no
    setting of ``settings`` or of the model's generation config asks for a processor, a stop rule or a
    cache other than the dynamic one."""
    config = model.generation_config
    if set(settings) - set(NEUTRAL) or getattr(config, "cache_implementation", None) not in (None, "dynamic"):
        return False
    given = {name: settings.get(name, getattr(config, name, None)) for name in NEUTRAL}
    return all(value is None or value == NEUTRAL[name] for name, value in given.items())


def eos_ids(model: Any) -> set[int]:
    """The token ids that end generation for ``model`` (its generation config's, as generate reads them)."""
    eos = model.generation_config.eos_token_id
    return set() if eos is None else {eos} if isinstance(eos, int) else set(eos)


@torch.inference_mode()
def greedy_tokens(model: Any, prompt: torch.Tensor, max_new_tokens: int) -> Iterator[int]:
    """New token ids after ``prompt`` (token ids ``[1, n]`` or input embeddings ``[1, n, hidden]``,
    on the model's device), one at a time, over a dynamic cache; stops after an end-of-sequence
    token (yielded, as generate returns it) or ``max_new_tokens`` tokens."""
    from transformers import DynamicCache

    cache, stop = DynamicCache(config=model.config.get_text_config(decoder=True)), eos_ids(model)  # as generate makes it
    given = {"inputs_embeds" if prompt.is_floating_point() else "input_ids": prompt}
    out = model(**given, use_cache=True, logits_to_keep=1, **cache_argument(model, cache))
    for step in range(max_new_tokens):
        token = int(out.logits[0, -1].argmax())
        yield token
        if token in stop or step == max_new_tokens - 1:
            return
        ids = torch.tensor([[token]], device=prompt.device)
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **cache_argument(model, cache))


def greedy_text(model: Any, tokenizer: Any, prompt: torch.Tensor, max_new_tokens: int) -> Iterator[str]:
    """The text of :func:`greedy_tokens` as it grows, cut into the pieces a ``TextIteratorStreamer``
    cuts (whole words, special tokens left out), so that a consumer timing the first piece sees what
    it saw through ``generate``."""
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_special_tokens=True)  # fed the new tokens only
    for token in greedy_tokens(model, prompt, max_new_tokens):
        streamer.put(torch.tensor([token]))
        yield from _drain(streamer)
    streamer.end()
    yield from _drain(streamer)


def _drain(streamer: Any) -> Iterator[str]:
    """The text pieces a ``TextIteratorStreamer`` holds now (its end signal, None, left out)."""
    while not streamer.text_queue.empty():
        piece = streamer.text_queue.get_nowait()
        if piece is not None:
            yield piece
