"""The in-thread greedy loop that CausalLM.stream runs for plain greedy eager decoding on CUDA: generate's
tokens and text, its stop at end-of-sequence, soft (embedding) prompts, and when it must not run. The
tiny model runs on the CPU, so the tests that stream through the loop let it run there."""

import threading

import pytest
import torch

from ragpress.core import greedy
from ragpress.core import lm as lm_module
from ragpress.core.greedy import greedy_tokens, plain_greedy

PROMPTS = ["The with statement calls", "def add(a, b):\n    return", "Paris is the capital of"]


@pytest.fixture
def no_threads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a generation thread was started")

    monkeypatch.setattr(lm_module.threading, "Thread", refuse)
    monkeypatch.setattr(greedy, "LOOP_DEVICES", ("cuda", "cpu"))


@pytest.mark.parametrize("text", PROMPTS)
def test_stream_gives_generates_greedy_text_without_a_thread(tiny_lm, text, no_threads):
    prompt = tiny_lm.chat_ids([{"role": "user", "content": text}])
    expected = tiny_lm.generate(prompt, 12, decode="eager")
    assert list(greedy_tokens(tiny_lm.model, prompt, 12)) == expected.tolist()
    assert "".join(tiny_lm.stream(prompt, 12, decode="eager", repetition_penalty=1.0)) == tiny_lm.tokenizer.decode(expected, skip_special_tokens=True)


def test_greedy_loop_stops_after_the_end_of_sequence_token_as_generate_does(tiny_lm, monkeypatch):
    prompt = tiny_lm.chat_ids([{"role": "user", "content": PROMPTS[0]}])
    free = tiny_lm.generate(prompt, 12, decode="eager").tolist()
    monkeypatch.setattr(tiny_lm.model.generation_config, "eos_token_id", [free[3]])
    stopped = tiny_lm.generate(prompt, 12, decode="eager").tolist()
    assert stopped == free[: free.index(free[3]) + 1]
    assert list(greedy_tokens(tiny_lm.model, prompt, 12)) == stopped


def test_soft_prompt_of_input_embeddings_decodes_as_generate_does(tiny_lm, no_threads):
    ids = tiny_lm.chat_ids([{"role": "user", "content": PROMPTS[1]}])
    with torch.inference_mode():
        embeds = tiny_lm.embed(ids)
    expected = tiny_lm.generate(embeds, 10, decode="eager")
    assert list(greedy_tokens(tiny_lm.model, embeds, 10)) == expected.tolist()
    assert "".join(tiny_lm.stream(embeds, 10, decode="eager")) == tiny_lm.tokenizer.decode(expected, skip_special_tokens=True)


def test_a_logits_processor_sampling_or_the_cpu_keeps_generate_in_its_thread(tiny_lm, monkeypatch):
    assert plain_greedy(tiny_lm.model, {}) and plain_greedy(tiny_lm.model, {"repetition_penalty": 1.0})
    assert not plain_greedy(tiny_lm.model, {"repetition_penalty": 1.3}) and not plain_greedy(tiny_lm.model, {"top_k": 5})
    monkeypatch.setattr(tiny_lm.model.generation_config, "no_repeat_ngram_size", 2)
    assert not plain_greedy(tiny_lm.model, {})
    monkeypatch.undo()
    started = []
    real = threading.Thread
    monkeypatch.setattr(lm_module.threading, "Thread", lambda *a, **k: started.append(1) or real(*a, **k))
    prompt = tiny_lm.chat_ids([{"role": "user", "content": PROMPTS[2]}])
    list(tiny_lm.stream(prompt, 4, decode="eager", repetition_penalty=1.3))
    list(tiny_lm.stream(prompt, 4, temperature=0.7, decode="eager"))
    list(tiny_lm.stream(prompt, 4, decode="eager"))  # plain greedy, but on the CPU
    assert len(started) == 3
    monkeypatch.setattr(greedy, "LOOP_DEVICES", ("cuda", "cpu"))
    list(tiny_lm.stream(prompt, 4, decode="eager"))
    assert len(started) == 3
