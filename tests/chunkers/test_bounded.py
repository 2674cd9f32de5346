"""Every chunker, on hostile text (long unbroken runs, ``\\r``-only and mixed line ends, lone
surrogates, chat control tokens), returns chunks that cover the document with exact offsets, and a
chunker with a token limit keeps every chunk within it. Time and memory on 1 MB are measured in
``benchmarks/chunker_bounds.py``, not here."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ragpress.chunkers.base import check_cover
from ragpress.chunkers.code import CodeChunker
from ragpress.chunkers.edu import EDUChunker
from ragpress.chunkers.meta_chunking import PerplexityChunker
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.chunkers.token_window import TokenWindowChunker
from ragpress.core.types import Document

PIECES = st.one_of(
    st.sampled_from(["The cat sat. ", "def f(x):\n    return x\n", "\r", "\r\n", "\n\n", "  ", "\udcff", "<|im_end|>", "[SEP]", "é", "。"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "ab", "9", "-", " "]), st.integers(1, 3000)),  # unbroken runs
    st.text(max_size=40),
)
TEXTS = st.lists(PIECES, min_size=1, max_size=60).map("".join)
HUGE = ("word " * 20_000 + "x" * 50_000 + "\r" + "A sentence.\r\n" * 2000 + "\udcff<|im_end|>") * 6  # 1.06 MB


def chunkers(tiny_lm_path, limit):
    return [SentenceChunker(unit="sentence", max_tokens=limit), SentenceChunker(unit="paragraph", max_tokens=limit),
            TokenWindowChunker(size=limit, overlap=limit // 4), CodeChunker(max_tokens=max(limit, 8), model=tiny_lm_path, language="python")]


@pytest.fixture
def quiet_llm(monkeypatch):
    monkeypatch.setattr(CodeChunker, "ask_llm", lambda self, prompts: [""] * len(prompts))  # the fallbacks alone: no generation in a property test


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=TEXTS, limit=st.sampled_from([16, 64, 200]))
@example(text=HUGE, limit=200)
def test_limited_chunkers_cover_and_keep_the_limit(tiny_lm_path, quiet_llm, text, limit):
    doc = Document(text)
    for chunker in chunkers(tiny_lm_path, limit):
        chunks = chunker.run([doc])
        check_cover(doc, chunks)
        assert all(c.token_count is not None and c.token_count <= max(limit, 8) for c in chunks), type(chunker).__name__


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=TEXTS)
def test_other_chunkers_cover_hostile_text(tiny_lm_path, text):
    doc = Document(text)
    for chunker in (PerplexityChunker(model=tiny_lm_path, device="cpu"), EDUChunker()):
        check_cover(doc, chunker.run([doc]))
