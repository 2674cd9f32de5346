"""PPL Chunking of a ~10,000-word text (Paul Graham essays) with SmolLM2-135M on CPU: ragpress
against the official Meta-Chunking code, same model object, same sentences, measured side by side.

The official code is not part of ragpress. Fetch it anywhere and point ``--official`` at its
``tools`` folder, e.g.::

    git clone https://github.com/IAAR-Shanghai/Meta-Chunking /tmp/Meta-Chunking
    python -m benchmarks.meta_chunking --official /tmp/Meta-Chunking/tools

Glue (ours, below) lets it run unchanged: stub modules for ``nltk``/``jieba`` (not needed: its
sentence splitter is replaced by our sentences, stripped as NLTK's would be), a recorder around its
``find_minima`` to read its sentence values and boundaries, and a model wrapper that converts the
legacy ``[(k, v), ...]`` cache it slices to and from transformers' ``DynamicCache`` (it was written
for transformers 4.x, which did this conversion itself).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import types
from pathlib import Path

import torch

from benchmarks._common import paul_graham_essays, timed
from ragpress.chunkers.meta_chunking import find_minima, sentence_nll
from ragpress.chunkers.sentence import split_sentences
from ragpress.models import load_causal_lm


def essays(words: int) -> str:
    """Whole essays in name order, skipping any that would overshoot ``words``, until within 2%."""
    parts, total = [], 0
    for text in paul_graham_essays():
        text = text.strip()
        if total + len(text.split()) <= words:
            parts.append(text)
            total += len(text.split())
        if total >= 0.98 * words:
            break
    return "\n\n".join(parts)


class LegacyCacheModel:
    """The official code slices ``past_key_values`` as a list of ``(k, v)``; transformers 5 wants a Cache."""

    def __init__(self, model):
        self.model, self.device = model, model.device

    def __call__(self, input_ids, attention_mask=None, past_key_values=None, use_cache=True):
        from transformers import DynamicCache

        cache = DynamicCache(ddp_cache_data=[tuple(kv) for kv in past_key_values]) if past_key_values else None
        out = self.model(input_ids, attention_mask=attention_mask, past_key_values=cache, use_cache=use_cache)
        out.past_key_values = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        return out


def official_tools(tools: Path) -> None:
    """Make the official ``tools/`` importable: its folder on ``sys.path`` (it imports its own
    packages, utils.ppl_calculate, from there) and stubs for the ``jieba`` and ``nltk`` it imports."""
    sys.modules.setdefault("jieba", types.ModuleType("jieba"))
    nltk = types.ModuleType("nltk")
    nltk.tokenize = types.ModuleType("nltk.tokenize")
    nltk.tokenize.sent_tokenize = None  # its splitter is replaced by our sentences
    sys.modules.setdefault("nltk", nltk)
    sys.modules.setdefault("nltk.tokenize", nltk.tokenize)
    if str(tools) not in sys.path:
        sys.path.insert(0, str(tools))


def load_official(tools: Path, sentences: list[str]):
    official_tools(tools)
    import ppl_chunking

    ppl_chunking.split_text_by_punctuation = lambda text, language: list(sentences)
    record = {}
    original = ppl_chunking.find_minima

    def recording_find_minima(values, threshold):
        record["values"], record["minima"] = list(values), original(values, threshold)
        return record["minima"]

    ppl_chunking.find_minima = recording_find_minima
    return ppl_chunking, record


def spans_of(sentences: list[str], sep: str) -> tuple[str, list[tuple[int, int]]]:
    """The official's own input: the stripped sentences joined by ``sep``, with their spans."""
    spans, at = [], 0
    for s in sentences:
        spans.append((at, at + len(s)))
        at += len(s) + len(sep)
    return sep.join(sentences), spans


def pooled_f1(ours: list[list[int]], theirs: list[list[int]]) -> float:
    a = {(d, b) for d, ends in enumerate(ours) for b in ends}
    b = {(d, e) for d, ends in enumerate(theirs) for e in ends}
    hits = len(a & b)
    return 2 * hits / (len(a) + len(b)) if a or b else 1.0


def ends_of_chunks(chunks: list[str], sentences: list[str]) -> list[int]:
    """Sentence indices that end the official margin-sampling chunks (sentences joined by a space)."""
    ends, i = [], 0
    for chunk in chunks[:-1]:
        text = sentences[i]
        while text != chunk.strip():
            i += 1
            text += " " + sentences[i]
        ends.append(i)
        i += 1
    return ends


class AnswerTokens:
    """The tokenizer for the official margin code, which encodes ``['1', '2']`` expecting one id per
    item, as transformers 4 did (5 reads the list as a batch), and writes its chat prompt by hand
    (``<|im_start|>system...``), so its special tokens must be read as such: ragpress's tokenizers split
    special-token text into plain pieces (``core.text``: retrieved text must not become chat markup),
    which turned the official prompt's 11 markers into 8-token strings (269 tokens instead of 241) and
    its margins into noise (-0.02 to -0.06 on every sentence of a document)."""

    def __init__(self, lm):
        self.lm = lm

    def encode(self, text, return_tensors=None):
        if isinstance(text, list):
            return torch.tensor([[self.lm.encode(t)[0] for t in text]])
        return self.lm.tokenizer.encode(text, return_tensors=return_tensors, split_special_tokens=False)


def official_margin_ends(tools: Path, docs: list[list[str]], lm) -> list[list[int]]:
    """The official margin sampling (``tools/margin_sampling_chunking.py``, its English defaults)
    over each document's sentences, one document at a time as its own code runs: the sentence
    indices that end its chunks."""
    official_tools(tools)
    import margin_sampling_chunking as official

    answers, out = AnswerTokens(lm), []
    for sentences in docs:
        official.split_text_by_punctuation = lambda text, language, s=sentences: list(s)
        out.append(ends_of_chunks(official.llm_chunker_ms(" ".join(sentences), lm.model, answers, "en", "no", 200), sentences))
    return out


def agreement(ours: list[int], theirs: list[int], tolerance: int = 0) -> dict[str, float]:
    """Boundary precision/recall/F1 of ``ours`` against ``theirs`` (a boundary within ``tolerance``
    sentences of an unmatched one counts)."""
    unmatched, hits = set(theirs), 0
    for b in ours:
        match = next((t for t in sorted(unmatched, key=lambda t: abs(t - b)) if abs(t - b) <= tolerance), None)
        if match is not None:
            unmatched.discard(match)
            hits += 1
    p, r = hits / max(len(ours), 1), hits / max(len(theirs), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def matmul_rate(seconds: float = 3.0) -> float:
    """FLOP/s of float32 matmuls shaped like the model's (2048 tokens x 576 x 1536), measured now."""
    a, b = torch.randn(2048, 576), torch.randn(576, 1536)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return count * 2 * 2048 * 576 * 1536 / (time.perf_counter() - start)


def pass_flops(config, n_tokens: int, window: int, context: int) -> float:
    """Matmul FLOPs of the windowed PPL pass over ``n_tokens`` tokens: the weights (embeddings
    excluded, the tied LM head included) and attention over what each token sees (the cache kept
    plus its own window up to itself)."""
    hidden, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    kv = hidden * config.num_key_value_heads // config.num_attention_heads
    weights = layers * (2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * config.intermediate_size) + hidden * vocab
    seen, start = 0, 0
    while start < n_tokens:
        piece = min(window, n_tokens - start)
        cache = min(start, context - piece)
        seen += piece * cache + piece * (piece + 1) // 2
        start += piece
    return 2.0 * weights * n_tokens + 4.0 * layers * hidden * seen


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="the official repository's tools/ folder")
    parser.add_argument("--words", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is robust on a shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    text = essays(args.words)
    lm = load_causal_lm("smollm2-135m", device="cpu")
    split_s, spans = timed(split_sentences, text)
    sentences = [text[s:e] for s, e in spans]
    n_tokens = len(lm.encode(text))
    print(f"text: {len(text.split())} words, {n_tokens} tokens, {len(spans)} sentences (spaCy split {split_s:.1f} s)")
    with torch.inference_mode():
        lm.model(input_ids=torch.tensor([lm.encode(text)[:256]]))  # warm-up

    official, record = load_official(args.official, sentences)
    official_s, _ = timed(
        official.llm_chunker_ppl, text, LegacyCacheModel(lm.model), lm.tokenizer, 0, "en", batch_size=4096, max_txt_size=9000
    )

    def ours() -> tuple[list[float], list[int]]:
        values = sentence_nll(lm, text, spans, window=4096, max_context=9000)
        return values, find_minima(values, 0.0)

    ours_s, (values, ours_minima) = timed(ours)

    # ours on the official's input text (stripped sentences joined with nothing between them), to
    # separate the effect of the whitespace it drops from that of windowing
    joined = "".join(sentences)
    cuts = [0]
    for sentence in sentences:
        cuts.append(cuts[-1] + len(sentence))
    same_input = sentence_nll(lm, joined, list(itertools.pairwise(cuts)), window=4096, max_context=9000)
    same_input_minima = find_minima(same_input, 0.0)

    theirs, their_values = record["minima"], record["values"]
    # the official code trims its cache from its third 4096-token window on; before that both
    # implementations give every token its full context
    their_tokens = [len(ids) for ids in lm.tokenizer(sentences, add_special_tokens=False)["input_ids"]]
    untrimmed = sum(1 for end in torch.tensor(their_tokens).cumsum(0).tolist() if end <= 2 * 4096)
    print(f"\nofficial llm_chunker_ppl  : {official_s:7.1f} s, {len(theirs) + 1} chunks")
    print(f"ragpress PerplexityChunker: {ours_s:7.1f} s, {len(ours_minima) + 1} chunks")
    print(f"speed ratio official/ours : {official_s / ours_s:.2f}x")
    rate = matmul_rate()
    allowed = rate / (pass_flops(lm.model.config, n_tokens, 4096, min(9000, lm.max_length)) / n_tokens)
    print(f"matmul rate {rate / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads) allows {allowed:.1f} tokens/s for this pass; "
          f"ragpress {n_tokens / ours_s:.1f} tokens/s ({n_tokens / ours_s / allowed:.2f} of it), official {n_tokens / official_s:.1f} tokens/s "
          f"({n_tokens / official_s / allowed:.2f})")
    rows = [
        ("ours, original text", values, ours_minima),
        ("ours, official's joined text", same_input, same_input_minima),
    ]
    for name, vals, minima in rows:
        pair = torch.tensor([vals, their_values])
        corr = torch.corrcoef(pair)[0, 1].item()
        exact, near = agreement(minima, theirs), agreement(minima, theirs, tolerance=1)
        head = agreement([m for m in minima if m < untrimmed], [t for t in theirs if t < untrimmed])
        print(
            f"{name}: boundary F1 {exact['f1']:.3f} (P {exact['precision']:.3f} R {exact['recall']:.3f}), "
            f"F1 within one sentence {near['f1']:.3f}; F1 on the {untrimmed} sentences before the official "
            f"cache trim {head['f1']:.3f}; sentence log-PPL corr {corr:.4f}, "
            f"mean |diff| {(pair[0] - pair[1]).abs().mean():.4f} nats"
        )


if __name__ == "__main__":
    main()
