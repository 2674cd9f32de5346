"""CausalLM's batched scoring: length-sorted, left-padded batches give each row's own log-probs."""

from __future__ import annotations

import pytest
import torch

from ragpress.core.device import length_batches


def test_continuation_logprobs_batched_equal_one_row_at_a_time(tiny_lm):
    prefixes = ["", "The cat sat on the mat and", "A", "def f(x):\n    return", ""]
    continuations = [" purred loudly.", " then slept.", " very long continuation of several words here", " x + 1", "Hi"]
    alone = [tiny_lm.continuation_logprobs([p], [c], batch_size=1)[0] for p, c in zip(prefixes, continuations)]
    for batch_size in (2, 5, None):
        batched = tiny_lm.continuation_logprobs(prefixes, continuations, batch_size=batch_size)
        for one, together, text in zip(alone, batched, continuations):
            assert one.shape == together.shape == (len(tiny_lm.encode(text)),)
            assert torch.allclose(one, together, atol=1e-5)
    with torch.inference_mode():  # the unpadded forward agrees
        ids = torch.tensor([tiny_lm.encode(prefixes[1] + continuations[1])])
        logits = tiny_lm.model(input_ids=ids).logits[0].float()
    n = len(tiny_lm.encode(continuations[1]))
    expected = torch.log_softmax(logits[-n - 1 : -1], -1).gather(-1, ids[0, -n:, None])[:, 0]
    assert torch.allclose(alone[1], expected, atol=1e-5)


def test_length_batches_sort_and_respect_the_token_budget():
    lengths = [5, 50, 7, 6, 48, 200]
    batches = length_batches(lengths, tokens=100)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 100 or len(b) == 1 for b in batches)
    assert batches[0] == [0, 3, 2, 4] or batches[0][:3] == [0, 3, 2]  # shortest first
    assert length_batches(lengths, tokens=10**9, most_rows=2) == [[0, 3], [2, 4], [1, 5]]
    # the attention bound: rows x longest x longest reach (scores that a masked attention may materialise)
    assert length_batches(lengths, tokens=10**9, pairs=3 * 50 * 50) == [[0, 3, 2], [4, 1], [5]]
    assert length_batches([10] * 4, tokens=10**9, pairs=2 * 10 * 100, reach=[100] * 4) == [[0, 1], [2, 3]]
    # the padding cost: [5, 6, 7] pad 3 tokens at most; widening them to 48 would pad 3 rows by 41 to 43 each
    assert length_batches(lengths, tokens=10**9, padding=10) == [[0, 3, 2], [4, 1], [5]]
    assert length_batches(lengths, tokens=10**9, padding=10**6) == [[0, 3, 2, 4, 1, 5]]
    assert length_batches(lengths, tokens=100, padding=10**6) == length_batches(lengths, tokens=100)  # the bounds still hold
    with pytest.raises(TypeError):
        length_batches(lengths)


def test_length_batches_with_padding_find_the_least_cost_cuts():
    """Against every way of cutting the sorted rows (2^(n-1) of them), with and without bounds."""
    import itertools
    import random

    rng = random.Random(0)
    for _ in range(60):
        lengths = [rng.choice([rng.randint(1, 20), rng.randint(20, 400)]) for _ in range(rng.randint(1, 8))]
        padding, tokens, most = rng.choice([1, 30, 300]), rng.choice([10**9, 800]), rng.choice([None, 3])
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])

        def cost(batches):
            return sum(padding + len(b) * max(lengths[i] for i in b) for b in batches)

        def allowed(b):
            return len(b) == 1 or (len(b) * max(lengths[i] for i in b) <= tokens and (most is None or len(b) <= most))

        best = min(
            cost(bs) for cuts in itertools.product([0, 1], repeat=len(lengths) - 1)
            for bs in [[order[a:b] for a, b in zip([0, *[k + 1 for k, c in enumerate(cuts) if c]], [*[k + 1 for k, c in enumerate(cuts) if c], len(order)])]]
            if all(map(allowed, bs))
        )
        found = length_batches(lengths, tokens, most_rows=most, padding=padding)
        assert sorted(i for b in found for i in b) == list(range(len(lengths))) and all(map(allowed, found))
        assert cost(found) == best


def test_padding_allowance_is_a_forwards_fixed_cost_over_a_tokens_cost():
    from transformers import LlamaConfig

    from ragpress.core.device import padding_allowance

    smollm2 = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3)
    llama8b = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    f32, bf16 = torch.float32, torch.bfloat16
    assert 20 <= padding_allowance(cpu, smollm2, f32) <= 40  # 38 ms a forward over 1.26 ms a token, measured on the CI host
    assert padding_allowance(cpu, smollm2, bf16) == padding_allowance(cpu, smollm2, f32)  # no CPU bfloat16 entry
    assert padding_allowance(cuda, smollm2, f32) > 100 * padding_allowance(cpu, smollm2, f32)  # a GPU runs tokens far faster
    assert padding_allowance(cuda, smollm2, bf16) > 2 * padding_allowance(cuda, smollm2, f32)  # and bfloat16 ones faster still
    assert padding_allowance(cuda, llama8b, bf16) < padding_allowance(cuda, smollm2, bf16) / 50  # a larger model's tokens cost more


def test_padded_attention_leaves_out_cudnn_on_cuda_only_and_restores_it():
    from ragpress.core.device import padded_attention

    before = torch.backends.cuda.cudnn_sdp_enabled()
    with padded_attention(torch.device("cuda")):  # sets PyTorch's backend flags; needs no GPU
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled() == before
    with padded_attention(torch.device("cpu")):
        assert torch.backends.cuda.cudnn_sdp_enabled() == before
