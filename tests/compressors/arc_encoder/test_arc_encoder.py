"""ARC-Encoder: pooling, shapes, decoder keying, training steps, checkpoints."""

import math
import random

import pytest
import torch

from ragpress.compressors.arc_encoder import ArcEncoder, ArcModel, group_sizes, pooling_matrix
from ragpress.compressors.arc_encoder.model import CHECKPOINTS, CONT, REC
from ragpress.compressors.arc_encoder.train import Batches, step_loss
from ragpress.core import Chunk, Document
from ragpress.models import load_causal_lm


@pytest.fixture(scope="module")
def checkpoint(tiny_lm_path, tmp_path_factory) -> str:
    """An untrained ARC-Encoder over the tiny LM (2 of its 4 layers) for the tiny decoder."""
    torch.manual_seed(0)
    model = ArcModel.create(tiny_lm_path, {tiny_lm_path: 32}, encoder_layers=2, lora_rank=4)
    return str(model.save(tmp_path_factory.mktemp("arc")))


def chunk(text: str) -> Chunk:
    return Chunk.of(Document(text, id="d"), 0, len(text))


def test_groups_are_consecutive_and_even():
    assert group_sizes(10, 4) == [4, 3, 3] and group_sizes(8, 4) == [4, 4] and group_sizes(3, 8) == [3]
    assert group_sizes(5, 1) == [1] * 5
    weights = pooling_matrix([5, 2], 2)
    expected = torch.tensor([[1 / 2, 1 / 2, 0, 0, 0], [0, 0, 1 / 2, 1 / 2, 0], [0, 0, 0, 0, 1]])
    assert torch.allclose(weights[0], expected)
    assert torch.allclose(weights[1, 0], torch.tensor([1 / 2, 1 / 2, 0, 0, 0])) and weights[1, 1:].sum() == 0
    with pytest.raises(ValueError, match="at least 1"):
        group_sizes(4, 0)


def test_pooled_queries_average_the_group_hidden_states(checkpoint):
    """Hand check of §3.2: with a ratio of 1 the pooled block is an ordinary (non-causal) block;
    with a ratio of 2 its query rows are the mean of each pair of hidden states."""
    model = ArcModel.load(checkpoint).eval()
    last = model.backbone.layers[-1]
    h = torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(1, 1, 1, 4, dtype=torch.bool)
    rotary = model.backbone.rotary_emb(h, torch.arange(4)[None])
    with torch.no_grad():
        plain = last(h, attention_mask=mask, position_embeddings=rotary)
        same = model._pooled_block(last, h, pooling_matrix([4], 1), mask, rotary, torch.arange(4.0)[None])
        assert torch.allclose(plain, same, atol=1e-5)
        pairs = torch.stack([h[0, :2].mean(0), h[0, 2:].mean(0)])[None]
        reference = last(torch.cat([pairs, h], 1), attention_mask=torch.tensor([[[[False, False] + [True] * 4]]]).expand(1, 1, 6, 6),
                         position_embeddings=model.backbone.rotary_emb(h, torch.tensor([[0.5, 2.5, 0, 1, 2, 3]])))
        pooled = model._pooled_block(last, h, pooling_matrix([4], 2), mask, rotary, torch.tensor([[0.5, 2.5]]))
    assert torch.allclose(pooled, reference[:, :2], atol=1e-5)


def test_rows_are_ceil_tokens_over_factor_plus_cont_in_decoder_space(checkpoint, tiny_lm_path):
    lm = load_causal_lm(tiny_lm_path, "cpu")
    text = "The with statement wraps a block in the methods of a context manager. " * 3
    tokens = len(lm.encode(text))
    for ratio in (1, 4, 8):
        context = ArcEncoder(decoder=tiny_lm_path, checkpoint=checkpoint, ratio=ratio, device="cpu").run("q", [chunk(text)])
        assert context.embeddings.shape == (math.ceil(tokens / ratio) + 1, lm.model.config.hidden_size)
        assert context.tokens_before == tokens and context.metadata["decoder"] == tiny_lm_path
    windows = ArcEncoder(decoder=tiny_lm_path, checkpoint=checkpoint, ratio=4, max_tokens=16, device="cpu").run("q", [chunk(text)])
    sizes = [min(16, tokens - i) for i in range(0, tokens, 16)]
    assert windows.metadata["windows_encoded"] == len(sizes) and len(windows.embeddings) == sum(math.ceil(s / 4) + 1 for s in sizes)


def test_chunks_seen_before_come_from_the_cache_and_the_cache_round_trips_safely(checkpoint, tiny_lm_path, tmp_path):
    texts = ["The with statement calls __exit__.", "A for loop may have an else clause.", "Generators yield values lazily."]
    arc = ArcEncoder(decoder=tiny_lm_path, checkpoint=checkpoint, device="cpu")
    first = arc.run("q", [chunk(t) for t in texts[:2]])
    second = arc.run("q", [chunk(t) for t in texts])  # two seen, one new
    assert first.metadata["windows_encoded"] == 2 and second.metadata["windows_encoded"] == 1 and second.metadata["cache_hits"] == 2
    assert torch.equal(second.embeddings[: len(first.embeddings)], first.embeddings)
    path = arc.save_cache(tmp_path / "arc.safetensors")
    reloaded = ArcEncoder(decoder=tiny_lm_path, checkpoint=checkpoint, device="cpu", cache=str(path)).run("q", [chunk(t) for t in texts])
    assert reloaded.metadata["windows_encoded"] == 0 and torch.equal(reloaded.embeddings, second.embeddings)
    with pytest.raises(ValueError, match="ratio: '4' in the cache, '8' now"):
        ArcEncoder(decoder=tiny_lm_path, checkpoint=checkpoint, device="cpu", ratio=8, cache=str(path)).run("q", [chunk(texts[0])])


def test_padding_does_not_change_a_sequence(checkpoint):
    model = ArcModel.load(checkpoint).eval()
    with torch.no_grad():
        alone = model.encode([[5, 6, 7, 8, 9]], 2)[0]
        batched = model.encode([[5, 6, 7, 8, 9], list(range(10, 30))], 2)[0]
    assert alone.shape == (3, 32) and torch.allclose(alone, batched, atol=1e-5)


def test_decoder_without_projector_and_bad_settings_are_refused(checkpoint, tiny_lm_path):
    with pytest.raises(ValueError, match="no projector for the decoder 'smollm2-135m'"):
        ArcEncoder(decoder="smollm2-135m", checkpoint=checkpoint).run("q", [chunk("Some text to compress.")])
    with pytest.raises(ValueError, match="pooling factor"):
        ArcEncoder(ratio=0)
    with pytest.raises(ValueError, match="empty"):
        ArcEncoder(decoder=tiny_lm_path, checkpoint=checkpoint).run("q", [chunk("")])
    with pytest.raises(FileNotFoundError, match="No ARC-Encoder checkpoint"):
        ArcModel.load("/nonexistent/arc")


def test_one_encoder_serves_two_decoders_with_their_own_projectors(checkpoint, tiny_lm_path):
    model = ArcModel.load(checkpoint)
    model.add_decoders({"wide-decoder": 48})
    pooled = model.encode([[1, 2, 3, 4, 5]], 4)[0]
    assert model.project(pooled, tiny_lm_path).shape == (3, 32) and model.project(pooled, "wide-decoder", REC).shape == (3, 48)
    cont = model.project(pooled, tiny_lm_path, CONT)
    model.special[model.projector_key(tiny_lm_path)].data[REC] += 1  # <Rec> and <Cont> are separate learned rows
    assert torch.equal(model.project(pooled, tiny_lm_path, CONT), cont)
    assert not torch.equal(model.project(pooled, tiny_lm_path, REC)[-1], cont[-1]) and torch.equal(model.project(pooled, tiny_lm_path, REC)[:-1], cont[:-1])
    with pytest.raises(ValueError, match="outputs 32 dimensions"):
        model.add_decoders({tiny_lm_path: 64})


@pytest.fixture(scope="module")
def sharp_decoder_path(tiny_lm_path, tmp_path_factory) -> str:
    """The tiny Llama with a wider random init: at the default 0.02 its logits are near uniform
    whatever the input, so no soft input can lower its loss."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from ragpress.models import load_tokenizer

    config = LlamaConfig.from_pretrained(tiny_lm_path)
    config.initializer_range = 0.3
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sharp_lm")
    LlamaForCausalLM(config).save_pretrained(path)
    load_tokenizer(tiny_lm_path).save_pretrained(path)
    return str(path)


def test_a_few_steps_lower_the_reconstruction_loss(tiny_lm_path, sharp_decoder_path):
    torch.manual_seed(0)
    model = ArcModel.create(tiny_lm_path, {sharp_decoder_path: 32}, encoder_layers=2, lora_rank=4).train()
    lm = load_causal_lm(sharp_decoder_path, "cpu")
    lm.model.requires_grad_(False)  # as train() does: the decoder is frozen
    frozen = [p.clone() for p in lm.model.parameters()]
    text = "Reconstruction teaches the encoder to keep every token it compresses. " * 20
    batches = Batches([{"source": "t", "title": "", "text": text, "split": "train"}], tiny_lm_path, seed=0)
    params = [p for n, p in model.named_parameters() if "lora_" in n or n.startswith(("projectors.", "special."))]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    assert random.Random(1).random() < 0.2  # so this seed always draws the reconstruction task

    def loss() -> torch.Tensor:
        batches.rng.seed(0)  # the same windows every time
        return step_loss(model, lm, sharp_decoder_path, batches, "pretrain", 4, 16, 4, random.Random(1))

    before = loss().item()
    for _ in range(10):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    after = loss().item()
    assert after < before - 0.5, (before, after)
    assert all(torch.equal(a, b) for a, b in zip(frozen, lm.model.parameters()))


@pytest.mark.integration
def test_shipped_checkpoint_answers_through_the_real_generator():
    from ragpress.generators.transformers_lm import TransformersGenerator

    assert (CHECKPOINTS / "arc-smollm2" / "arc.safetensors").exists()
    text = (
        "Apollo 8 was the first crewed spacecraft to leave low Earth orbit, reach the Moon, orbit it and return. "
        "Frank Borman, James Lovell and William Anders flew it in December 1968."
    )
    context = ArcEncoder(ratio=4, device="cpu").run("Who flew Apollo 8?", [chunk(text)])
    assert context.ratio > 3 and context.embeddings.shape[1] == 576
    answer = TransformersGenerator(model="smollm2-135m", device="cpu", max_new_tokens=12).run(context)
    assert answer.completion_tokens > 0 and answer.text.strip()


@pytest.mark.integration
def test_shipped_checkpoint_lowers_the_loss_of_a_held_out_continuation():
    """Held-out essays (ragpress.corpora's held-out rule): the decoder predicts the 64 tokens after a
    256-token window better from the 4x compressed window than from nothing."""
    from ragpress import corpora
    from ragpress.compressors.arc_encoder.train import decoder_nll

    essays = [p for p in sorted(corpora.essays_dir().glob("*.txt")) if corpora.split_of(f"paul_graham/{p.stem}") == "heldout"]
    lm = load_causal_lm("smollm2-135m", "cpu")
    arc = ArcEncoder(ratio=4, device="cpu")
    bos = lm.embed(torch.tensor([lm.tokenizer.bos_token_id]))
    prefixes, targets = {"arc": [], "none": []}, []
    for path in essays[:3]:
        ids = lm.encode(path.read_text())[:320]
        context = arc.run("q", [chunk(lm.tokenizer.decode(ids[:256]))])
        prefixes["arc"].append([bos, context.embeddings])
        prefixes["none"].append([bos])
        targets.append(ids[256:])
    with torch.inference_mode():
        arc_nll, none_nll = (decoder_nll(lm, prefixes[k], targets).sum().item() for k in ("arc", "none"))
    assert arc_nll < none_nll


def test_train_command_writes_a_checkpoint_the_compressor_loads(tiny_lm_path, tmp_path):
    import json

    from ragpress.cli import main

    text = " ".join(f"Sentence {i} of a Wikipedia article about the abacus, a counting frame." for i in range(60))
    docs = [{"source": "wikipedia", "title": "Abacus", "text": text, "split": "train"}, {"source": "essay", "title": "e", "text": text, "split": "heldout"}]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(map(json.dumps, docs)))
    out = tmp_path / "arc"
    main(["train", "arc-encoder", "--decoder", tiny_lm_path, "--encoder", tiny_lm_path, "--out", str(out), "--corpus", str(corpus), "--seconds", "0.1", "--batch-size", "1"])
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["steps"] == {"pretrain": 20, "finetune": 20} and config["training"]["train_documents"] == 1
    context = ArcEncoder(decoder=tiny_lm_path, checkpoint=str(out), ratio=8, device="cpu").run("q", [chunk("A short text to compress.")])
    assert context.embeddings.shape[1] == 32


def test_pictures_show_the_groups_and_the_losses(tiny_lm_path):
    from ragpress.compressors.arc_encoder.viz import plot_quality, pooling_html

    text = "Pooling merges the queries of consecutive tokens. " * 4
    tokens = len(load_causal_lm(tiny_lm_path, "cpu").encode(text))
    page = pooling_html(text, ratio=4, tokenizer=tiny_lm_path, max_tokens=16)
    rows = sum(math.ceil(min(16, tokens - i) / 4) for i in range(0, tokens, 16))
    assert page.count("<span") == rows and f"{tokens} tokens -> {rows} soft rows" in page
    figure = plot_quality({"lm": {"full": 3.0, "arc4": 3.7, "none": 4.0}, "chat": {"full": 3.8, "arc4": 4.3, "none": 4.4}})
    assert len(figure.axes[0].patches) == 6
