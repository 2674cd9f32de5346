"""A KV cache goes in and comes back under the name the installed transformers uses, without the
deprecated ``past_key_values`` where ``cache`` exists."""

import warnings

import torch
from transformers import DynamicCache

from ragpress.core.kv_cache import cache_argument, returned_cache


def test_a_cache_round_trip_uses_no_deprecated_name(tiny_lm):
    model = tiny_lm.model
    ids = torch.tensor([[1, 2, 3, 4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated argument or field warns: fail on it
        first = model(input_ids=ids[:, :2], use_cache=True, **cache_argument(model, DynamicCache(config=model.config)))
        cache = returned_cache(first)
        second = model(input_ids=ids[:, 2:], use_cache=True, **cache_argument(model, cache))
    assert cache.get_seq_length() == 4  # the same cache object grew by the second call
    whole = model(input_ids=ids).logits[:, 2:]
    torch.testing.assert_close(second.logits, whole, rtol=1e-4, atol=1e-4)
