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
    with pytest.raises(TypeError):
        length_batches(lengths)
