import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.core import Chunk, Document, check_provenance
from ragpress.core.errors import BudgetError

DOC = Document(" ".join(f"Sentence number {i} says something about topic {i % 7}." for i in range(60)), id="doc")


def _chunks(cuts):
    bounds = sorted(set(cuts) | {0, len(DOC.text)})
    return [Chunk.of(DOC, s, e) for s, e in zip(bounds, bounds[1:]) if DOC.text[s:e].strip()]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, len(DOC.text)), min_size=1, max_size=12), st.integers(1, 400))
def test_packed_context_never_exceeds_budget_and_keeps_exact_spans(cuts, budget):
    chunks = _chunks(cuts)
    packer = BudgetPacker(budget=budget)
    counts = [packer.count_tokens(c.text) for c in chunks]
    if min(counts) > budget:
        with pytest.raises(BudgetError, match="smaller than every retrieved chunk"):
            packer.run("q", chunks)
        return
    context = packer.run("q", chunks)
    assert context.tokens_after <= budget
    assert context.tokens_after == sum(packer.count_tokens(p.text) for p in context.pieces)
    assert context.tokens_before == sum(counts)
    check_provenance(context.pieces, [DOC])


def test_rank_order_kept_and_source_order_on_request():
    chunks = _chunks([100, 200, 300])[::-1]
    assert BudgetPacker(budget=10_000).run("q", chunks).pieces == tuple(chunks)
    by_source = BudgetPacker(budget=10_000, order="source").run("q", chunks).pieces
    assert [p.start for p in by_source] == sorted(p.start for p in chunks)


def test_duplicates_are_packed_once_and_empty_input_is_empty():
    chunk = _chunks([100])[0]
    assert BudgetPacker(budget=10_000).run("q", [chunk, chunk]).pieces == (chunk,)
    assert BudgetPacker().run("q", []).pieces == ()
    with pytest.raises(ValueError, match="budget must be at least 1"):
        BudgetPacker(budget=0)
