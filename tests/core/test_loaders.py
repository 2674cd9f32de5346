import math

import pytest
import torch

from ragpress.models import ModelLoadError, load_causal_lm


def test_same_name_device_dtype_is_one_model(tiny_lm_path):
    assert load_causal_lm(tiny_lm_path, device="cpu") is load_causal_lm(tiny_lm_path, device="cpu")


def test_continuation_logprobs_match_one_unbatched_forward(tiny_lm):
    prefixes, continuations = ["The cat sat", "A much longer prefix that needs padding in the batch"], [" on the mat.", " here"]
    batched = tiny_lm.continuation_logprobs(prefixes, continuations, batch_size=2)
    for prefix, continuation, got in zip(prefixes, continuations, batched):
        head, tail = tiny_lm.encode(prefix), tiny_lm.encode(continuation)
        ids = torch.tensor([head + tail])
        with torch.no_grad():
            logprobs = torch.log_softmax(tiny_lm.model(input_ids=ids).logits[0].float(), -1)
        expected = torch.stack([logprobs[len(head) - 1 + i, t] for i, t in enumerate(tail)])
        assert got.shape == (len(tail),)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_sliding_window_perplexity_equals_full_when_window_covers_text(tiny_lm):
    text = "Perplexity is the exponential of the mean negative log-likelihood. " * 4
    full = tiny_lm.perplexity(text)
    assert math.isclose(tiny_lm.perplexity(text, window=4096, stride=7), full, rel_tol=1e-4)
    windowed = tiny_lm.perplexity(text, window=16, stride=8)
    assert windowed > 0 and not math.isclose(windowed, full, rel_tol=1e-6)


def test_attentions_and_hidden_states_shapes(tiny_lm):
    n = len(tiny_lm.encode("one two three", special_tokens=True))
    assert tiny_lm.attentions("one two three", layer=1).shape == (4, n, n)
    states = tiny_lm.hidden_states("one two three")
    assert len(states) == 5 and states[-1].shape == (n, 32)


def test_greedy_generation_is_deterministic(tiny_lm):
    ids = tiny_lm.chat_ids([{"role": "user", "content": "hello"}])
    first = tiny_lm.generate(ids, max_new_tokens=5)
    assert torch.equal(first, tiny_lm.generate(ids, max_new_tokens=5))
    assert "".join(tiny_lm.stream(ids, max_new_tokens=5)) == tiny_lm.tokenizer.decode(first, skip_special_tokens=True)


def test_unknown_model_name_lists_aliases():
    with pytest.raises(ModelLoadError, match="smollm2-135m, minilm-l6"):
        load_causal_lm("/no/such/model-dir", device="cpu")


def test_chat_batch_equals_one_conversation_at_a_time(tiny_lm):
    conversations = [[{"role": "user", "content": text}] for text in ("hi", "a much longer question about the with statement", "ok")]
    batched = tiny_lm.chat_batch(conversations, max_new_tokens=5, batch_size=3, prefix="Answer:")
    assert batched == [tiny_lm.chat_batch([c], max_new_tokens=5, prefix="Answer:")[0] for c in conversations]
    assert all(reply.startswith("Answer:") for reply in batched)


@pytest.mark.integration
def test_bundled_smollm2_ends_its_turns_with_the_gguf_eos():
    """The GGUF declares EOS = <|im_end|> (id 2); some transformers versions read it as 1 on conversion."""
    lm = load_causal_lm("smollm2-135m", device="cpu")
    assert lm.tokenizer.eos_token == "<|im_end|>" and lm.tokenizer.eos_token_id == 2
    assert lm.model.config.eos_token_id == 2 and lm.model.generation_config.eos_token_id == 2
    assert lm.tokenizer.bos_token_id == 1 and lm.tokenizer.pad_token_id == 2
