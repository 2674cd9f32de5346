"""The static decode path gives the eager path's tokens (CPU, uncompiled), and every local generator
reaches it when asked."""

import pytest
import torch

from ragpress.core import Context
from ragpress.core import decode as decode_module
from ragpress.core.decode import static_length, uses_static
from ragpress.core.types import Chunk, Document
from ragpress.generators.gemfilter import GemFilterGenerator
from ragpress.generators.transformers_lm import TransformersGenerator

PROMPT = [{"role": "user", "content": "The with statement calls __exit__ when the block ends. What does it call?"}]


@pytest.fixture
def static_calls(monkeypatch):
    """Counts the calls that took the static path."""
    calls = []
    real = decode_module.static_generate

    def spy(*args, **kwargs):
        calls.append(args[1].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr("ragpress.core.lm.static_generate", spy)
    return calls


def test_static_length_buckets_cover_the_tokens_with_little_waste():
    lengths = [static_length(n) for n in range(1, 140_000, 97)]
    assert all(s >= n for s, n in zip(lengths, range(1, 140_000, 97)))
    assert all(s < n + max(256, n / 8) for s, n in zip(lengths, range(1, 140_000, 97)))  # at most 1/8 (or one 256-slot grain) more
    assert len(set(lengths)) < 60  # a few shapes, each compiled once
    assert static_length(131_072 + 64) == 147_456


def test_auto_is_static_on_cuda_only_and_bad_names_fail():
    assert uses_static("auto", torch.device("cuda")) and not uses_static("auto", torch.device("cpu"))
    assert uses_static("static", torch.device("cpu")) and not uses_static("eager", torch.device("cuda"))
    with pytest.raises(ValueError, match="decode must be one of"):
        uses_static("fast", torch.device("cpu"))
    with pytest.raises(ValueError, match="decode must be one of"):
        TransformersGenerator(decode="compiled")
    with pytest.raises(ValueError, match="decode must be one of"):
        GemFilterGenerator(decode="graph")


def test_cpu_default_stays_eager(tiny_lm, static_calls):
    tiny_lm.generate(tiny_lm.chat_ids(PROMPT), max_new_tokens=3)
    assert static_calls == []


def test_static_greedy_tokens_equal_eager_for_ids_and_embeddings(tiny_lm, static_calls):
    ids = tiny_lm.chat_ids(PROMPT)
    eager = tiny_lm.generate(ids, max_new_tokens=12, decode="eager")
    static = tiny_lm.generate(ids, max_new_tokens=12, decode="static")
    assert len(eager) == 12 and static.tolist() == eager.tolist()
    embeds = tiny_lm.embed(ids).detach()
    assert tiny_lm.generate(embeds, max_new_tokens=12, decode="static").tolist() == eager.tolist()
    assert len(static_calls) == 2


def test_static_sampling_equals_eager_with_the_same_seed(tiny_lm):
    ids = tiny_lm.chat_ids(PROMPT)
    eager = tiny_lm.generate(ids, max_new_tokens=8, temperature=1.0, seed=3, decode="eager")
    assert tiny_lm.generate(ids, max_new_tokens=8, temperature=1.0, seed=3, decode="static").tolist() == eager.tolist()


def test_static_left_padded_batch_equals_eager(tiny_lm, static_calls):
    prompts = [tiny_lm.chat_ids([{"role": "user", "content": text}])[0] for text in ("Hi.", "Why is the sky blue at noon?", "Name three rivers in Europe.")]
    eager = tiny_lm.generate_batch(prompts, 10, batch_size=3, decode="eager")
    static = tiny_lm.generate_batch(prompts, 10, batch_size=3, decode="static")
    assert [r.tolist() for r in static] == [r.tolist() for r in eager]
    assert len(static_calls) == 1 and static_calls[0][0] == 3  # one left-padded batch of three


def test_generators_take_the_static_path_with_the_eager_answers(tiny_lm_path, tiny_lm, static_calls):
    doc = Document("The cat sat on the warm mat near the door, and the dog slept by the fire all night long.")
    context = Context(query="Where did the cat sit?", pieces=(Chunk.of(doc, 0, len(doc.text)),))
    soft = Context(query="What does with call?", embeddings=torch.randn(6, tiny_lm.model.config.hidden_size, generator=torch.Generator().manual_seed(0)),
                   metadata={"decoder": tiny_lm_path})
    for make, ctx in [(lambda d: TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=8, decode=d), context),
                      (lambda d: TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=8, decode=d), soft),
                      (lambda d: GemFilterGenerator(model=tiny_lm_path, device="cpu", budget=20, max_new_tokens=8, decode=d), context)]:
        before = len(static_calls)
        eager, static = make("eager").run(ctx), make("static").run(ctx)
        assert static.text == eager.text and static.completion_tokens == eager.completion_tokens == 8
        assert len(static_calls) == before + 1
        assert "".join(make("static").stream(ctx)).strip() == eager.text
    assert [len(shape) for shape in static_calls[-6:]] == [2, 2, 3, 3, 2, 2]  # the soft prompt went in as input embeddings


def test_gqa_sdpa_equals_sdpa_and_static_generation_routes_through_it(tiny_lm):
    from types import SimpleNamespace

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from ragpress.core.decode import gqa_sdpa

    g = torch.Generator().manual_seed(0)
    module = SimpleNamespace(num_key_value_groups=4, is_causal=True, training=False)
    q, k, v = torch.randn(2, 8, 1, 16, generator=g), torch.randn(2, 2, 10, 16, generator=g), torch.randn(2, 2, 10, 16, generator=g)
    mask = torch.ones(2, 1, 1, 10, dtype=torch.bool)
    mask[0, ..., 7:] = False
    reference = sdpa_attention_forward(module, q, k, v, mask, scaling=0.25)[0]
    assert torch.allclose(gqa_sdpa(module, q, k, v, mask, scaling=0.25)[0], reference, atol=1e-6)
    tiny_lm.generate(tiny_lm.chat_ids(PROMPT), max_new_tokens=2, decode="static")
    assert tiny_lm.model.config._attn_implementation == "gqa_sdpa"


@pytest.mark.integration
def test_real_weights_static_equals_eager_in_float32_and_parts_only_at_bfloat16_ties():
    """SmolLM2's real weights on a Python reference prompt: float32 gives the same 48 greedy tokens on
    both paths; in bfloat16 the paths may part only at a step whose two best logits are within two
    bfloat16 steps of each other (rounding of another kernel, not a different computation)."""
    import math
    from pydoc_data.topics import topics

    from ragpress.core.loaders import load_causal_lm

    question = [{"role": "user", "content": f"{topics['with'][:3000]}\n\nWhat does the with statement call when the block is exited?"}]
    lm = load_causal_lm("smollm2-135m", device="cpu", dtype=torch.float32)
    ids = lm.chat_ids(question)
    assert lm.generate(ids, 48, decode="static").tolist() == lm.generate(ids, 48, decode="eager").tolist()

    lm = load_causal_lm("smollm2-135m", device="cpu", dtype=torch.bfloat16)
    eager, static = lm.generate(ids, 48, decode="eager").tolist(), lm.generate(ids, 48, decode="static").tolist()
    parted = next((i for i, (a, b) in enumerate(zip(eager, static)) if a != b), None)
    if parted is not None:
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([ids[0].tolist() + eager[:parted]])).logits[0, -1].float()
        best, second = logits.topk(2).values.tolist()
        step = 2.0 ** (math.floor(math.log2(abs(best))) - 7)  # bfloat16 keeps 8 significant bits
        assert best - second <= 2 * step, f"the paths parted at step {parted} where the margin was {best - second:.3f}"
