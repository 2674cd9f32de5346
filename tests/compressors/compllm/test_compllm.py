"""CompLLM: segment-wise concept embeddings, the segment cache, training, and bad input."""

import math
import pydoc_data.topics

import numpy as np
import pytest
import torch

from ragpress.compressors.compllm import CompLLM, save_checkpoint, split_segments
from ragpress.compressors.compllm.train import Distiller, TrainSettings, Windows, build_encoder, train_steps
from ragpress.compressors.segment_cache import SegmentCache
from ragpress.core.types import Chunk, Document
from ragpress.models import load_causal_lm, load_tokenizer

TEXTS = [pydoc_data.topics.topics[name][:900] for name in ("with", "if", "for", "while")]


def chunks(*texts: str) -> list[Chunk]:
    return [Chunk.of(Document(t, id=f"d{i}"), 0, len(t)) for i, t in enumerate(texts)]


def stage(path: str, **settings) -> CompLLM:
    return CompLLM(decoder=path, checkpoint="untrained", device="cpu", **settings)


@pytest.mark.parametrize("ratio", [1, 2, 4])
def test_one_ce_per_rate_tokens_of_each_segment(tiny_lm_path, ratio):
    compressor = stage(tiny_lm_path, ratio=ratio)
    context = compressor.run("What does with do?", chunks(*TEXTS[:2]))
    tokenizer = load_tokenizer(tiny_lm_path)
    expected = 0
    for chunk in chunks(*TEXTS[:2]):
        spans = split_segments(chunk.text, tokenizer, 20)
        assert "".join(chunk.text[s:e] for s, e in spans) == chunk.text  # segments partition the chunk
        lengths = [len(tokenizer(chunk.text[s:e], add_special_tokens=False)["input_ids"]) for s, e in spans]
        assert max(lengths) <= 21
        expected += sum(math.ceil(n / ratio) for n in lengths)
    assert context.embeddings.shape == (expected, 32)
    assert context.tokens_after == expected and context.tokens_before >= ratio * expected - ratio * len(context.metadata["segments"])
    assert context.metadata["decoder"] == tiny_lm_path
    assert sum(rows for *_, rows in context.metadata["segments"]) == expected


def test_segments_are_compressed_independently(tiny_lm_path):
    together = stage(tiny_lm_path).run("q", chunks(TEXTS[0], TEXTS[1])).embeddings
    alone = stage(tiny_lm_path).run("q", chunks(TEXTS[1])).embeddings
    assert torch.allclose(together[-len(alone) :], alone, atol=1e-5)


def test_a_segment_seen_again_is_never_re_encoded(tiny_lm_path):
    compressor = stage(tiny_lm_path)
    first = compressor.run("q", chunks(TEXTS[0]))
    segments = len(first.metadata["segments"])
    assert first.metadata["encoder_calls"] == 1 and compressor.segment_cache.misses == segments
    again = compressor.run("another question", chunks(TEXTS[0]))
    assert again.metadata["encoder_calls"] == 0 and again.metadata["cache_hits"] == segments
    assert torch.equal(again.embeddings, first.embeddings)
    mixed = compressor.run("q", chunks(TEXTS[0], TEXTS[1]))
    assert mixed.metadata["cache_hits"] == segments and mixed.metadata["encoder_calls"] == 1


def test_compression_calls_grow_linearly_with_segments(tiny_lm_path):
    widths = []
    for count in (1, 2, 4):
        compressor = stage(tiny_lm_path, batch_size=1)
        encoder = compressor.encoder
        hook = encoder.lm.get_decoder().register_forward_hook(lambda m, args, kwargs, out: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
        context = compressor.run("q", chunks(*TEXTS[:count]))
        hook.remove()
        assert context.metadata["encoder_calls"] == len(context.metadata["segments"])  # one pass per segment
    assert max(widths) <= 21 + 11  # no pass ever sees more than one segment and its EOS tokens
    batched = stage(tiny_lm_path, batch_size=4).run("q", chunks(*TEXTS))
    assert batched.metadata["encoder_calls"] == math.ceil(len(batched.metadata["segments"]) / 4)


def test_cache_round_trip_and_refusal(tiny_lm_path, tmp_path):
    path = tmp_path / "segments.safetensors"
    compressor = stage(tiny_lm_path, cache=str(path))
    first = compressor.run("q", chunks(TEXTS[0]))
    compressor.save_cache()
    reloaded = stage(tiny_lm_path, cache=str(path))
    again = reloaded.run("q", chunks(TEXTS[0]))
    assert again.metadata["encoder_calls"] == 0 and torch.equal(again.embeddings, first.embeddings)
    other = dict(reloaded.identity(), decoder="another-model", ratio="4.0")
    with pytest.raises(ValueError, match=r"another model.*decoder: '.+' in the cache, 'another-model' now.*ratio"):
        SegmentCache.load(path, other)
    with pytest.raises(ValueError, match="ratio"):  # a stage at another ratio refuses the file
        stage(tiny_lm_path, ratio=4, cache=str(path)).run("q", chunks(TEXTS[0]))
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1, 2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not a ragpress segment cache"):
        SegmentCache.load(tmp_path / "foreign.safetensors", other)


def test_bad_input(tiny_lm_path, tmp_path):
    with pytest.raises(ValueError, match="ratio must be a number >= 1"):
        stage(tiny_lm_path, ratio=0.5)
    with pytest.raises(ValueError, match="no context"):
        stage(tiny_lm_path).run("q", [])
    with pytest.raises(ValueError, match="no context"):
        stage(tiny_lm_path).run("q", chunks("   \n "))
    with pytest.raises(ValueError, match="train compllm"):
        CompLLM(decoder=tiny_lm_path, device="cpu").run("q", chunks(TEXTS[0]))
    lm = load_causal_lm(tiny_lm_path, "cpu")
    save_checkpoint(build_encoder(lm, TrainSettings()), tmp_path / "ck", tiny_lm_path, 20, {})
    assert CompLLM(decoder=tiny_lm_path, checkpoint=str(tmp_path / "ck"), device="cpu").run("q", chunks(TEXTS[0])).tokens_after > 0
    with pytest.raises(ValueError, match=r"trained at ratio 2(\.0)?, not 4"):
        CompLLM(decoder=tiny_lm_path, checkpoint=str(tmp_path / "ck"), ratio=4, device="cpu").run("q", chunks(TEXTS[0]))


def test_the_checkpoint_fixes_the_token_its_adapters_read(tiny_lm_path, tmp_path):
    """Concept slots are filled with the token the adapters were trained on, whatever the tokenizer
    now calls EOS (transformers versions disagree on SmolLM2's)."""
    lm = load_causal_lm(tiny_lm_path, "cpu")
    encoder = build_encoder(lm, TrainSettings())
    encoder.eos_id = lm.tokenizer.eos_token_id + 3
    save_checkpoint(encoder, tmp_path / "ck", tiny_lm_path, 20, {})
    loaded = CompLLM(decoder=tiny_lm_path, checkpoint=str(tmp_path / "ck"), device="cpu").encoder
    assert loaded.eos_id == lm.tokenizer.eos_token_id + 3
    segment = lm.tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"][:20]
    with torch.no_grad():
        trained_token = loaded([segment])[0]
        loaded.eos_id = lm.tokenizer.eos_token_id
        assert not torch.allclose(trained_token, loaded([segment])[0])  # the slot token matters


def test_a_few_training_steps_lower_the_distillation_loss(tiny_lm_path):
    lm = load_causal_lm(tiny_lm_path, "cpu")
    settings = TrainSettings(steps=8, batch_size=4, lr=3e-3, warmup=1, context_tokens=(40, 60), answer_tokens=8)
    docs = [{"id": f"pydoc/{n}", "source": "pydoc", "title": n, "text": pydoc_data.topics.topics[n]} for n in ("with", "if", "for", "try")]
    windows = Windows(docs, lm.tokenizer, settings.context_tokens, settings.answer_tokens)
    distiller = Distiller(lm, build_encoder(lm, settings), settings.segment_tokens)
    fixed = windows.sample(8, np.random.default_rng(1))
    before = float(distiller.loss(fixed)[0].detach())
    logs = list(train_steps(distiller, windows, settings))
    after = float(distiller.loss(fixed)[0].detach())
    assert len(logs) == 8 and after < 0.8 * before


@pytest.mark.integration
def test_shipped_checkpoint_lets_smollm2_answer_from_concept_embeddings():
    from ragpress.generators.transformers_lm import TransformersGenerator

    text = ("The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by Gustave Eiffel's "
            "company and completed in 1889 for the World's Fair. It is 330 metres tall.")
    context = CompLLM().run("In which city is the Eiffel Tower?", chunks(text))
    assert context.ratio >= 1.9 and context.metadata["decoder"] == "smollm2-135m"
    answer = TransformersGenerator(model="smollm2-135m", max_new_tokens=24).run(context)
    assert "Paris" in answer.text
