"""A soft context (input embeddings) reaches the decoder in the sources' place."""

import pytest
import torch

from ragpress.core import Context
from ragpress.core.prompt import SOFT_CONTEXT
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.models import load_causal_lm


def soft_context(lm, rows: int, decoder: str) -> Context:
    soft = torch.randn(rows, lm.model.config.hidden_size, generator=torch.Generator().manual_seed(rows))
    return Context(query="What does with call?", embeddings=soft, tokens_before=4 * rows, tokens_after=rows, metadata={"decoder": decoder})


def test_soft_rows_sit_between_the_prompt_tokens(tiny_lm_path):
    lm = load_causal_lm(tiny_lm_path, "cpu")
    generator = TransformersGenerator(model=tiny_lm_path, device="cpu")
    context = soft_context(lm, 5, tiny_lm_path)
    messages = generator.messages(context)
    assert messages[-1]["content"] == f"Sources:\n{SOFT_CONTEXT}\n\nQuestion: What does with call?"
    embeds = lm.chat_embeds(messages, SOFT_CONTEXT, context.embeddings)[0]
    starts = [i for i in range(len(embeds) - 4) if torch.equal(embeds[i : i + 5], context.embeddings)]
    assert len(starts) == 1
    as_text = lm.chat_ids(messages)[0]  # the same prompt with the marker as plain text
    assert torch.equal(embeds[: starts[0]], lm.embed(as_text[: starts[0]]))

def test_generation_from_embeddings_matches_generation_from_ids(tiny_lm_path):
    lm = load_causal_lm(tiny_lm_path, "cpu")
    ids = lm.chat_ids([{"role": "user", "content": "The with statement calls __exit__."}])
    from_ids = lm.generate(ids, max_new_tokens=6)
    from_embeds = lm.generate(lm.embed(ids).detach(), max_new_tokens=6)
    assert from_ids.tolist() == from_embeds.tolist() and len(from_ids) == 6


def test_generator_runs_and_streams_a_soft_context(tiny_lm_path):
    lm = load_causal_lm(tiny_lm_path, "cpu")
    generator = TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=5)
    context = soft_context(lm, 7, tiny_lm_path)
    answer = generator.run(context)
    plain = lm.chat_embeds(generator.messages(context), SOFT_CONTEXT, context.embeddings)
    assert answer.prompt_tokens == plain.shape[1] and answer.completion_tokens == 5
    assert "".join(generator.stream(context)).strip() == answer.text


def test_soft_context_for_another_decoder_or_shape_is_refused(tiny_lm_path):
    lm = load_causal_lm(tiny_lm_path, "cpu")
    with pytest.raises(ValueError, match="compressed for the decoder 'other-model'"):
        TransformersGenerator(model=tiny_lm_path, device="cpu").run(soft_context(lm, 3, "other-model"))
    wrong = Context(query="q", embeddings=torch.zeros(3, 7))
    with pytest.raises(ValueError, match=r"shape \[n, "):
        TransformersGenerator(model=tiny_lm_path, device="cpu").run(wrong)


def test_soft_and_plain_contexts_batch_together(tiny_lm_path):
    lm = load_causal_lm(tiny_lm_path, "cpu")
    generator = TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=4)
    contexts = [soft_context(lm, 3, tiny_lm_path), Context(query="Why?"), soft_context(lm, 9, tiny_lm_path)]
    batched = generator.run_batch(contexts)
    single = [generator.run(c) for c in contexts]
    assert [a.text for a in batched] == [a.text for a in single]
    assert [a.prompt_tokens for a in batched] == [a.prompt_tokens for a in single]
