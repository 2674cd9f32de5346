"""benchmarks/query_batch.py names the first stage where run and run_batch part for a query."""

from __future__ import annotations

from benchmarks.query_batch import first_difference
from ragpress.core.types import Answer, Chunk, Context, Document
from ragpress.pipelines.trace import Result

DOC = Document("One sentence here. Another sentence there. A third one.", id="d")
A, B = Chunk.of(DOC, 0, 18), Chunk.of(DOC, 19, 42)


def result(dense: list[Chunk], kept: list[Chunk], text: str) -> Result:
    context = Context("q", tuple(kept), tokens_before=10, tokens_after=5)
    answer = Answer(text, context)
    return Result("q", answer, {"dense": dense, "compress": context, "answer": answer}, ())


def test_first_difference_is_the_earliest_stage_that_differs_beyond_float_tolerance():
    base = result([A.with_score(0.9), B.with_score(0.5)], [A.with_score(2.0)], "yes")
    assert first_difference(base, result([A.with_score(0.90001), B.with_score(0.5)], [A.with_score(2.00001)], "yes")) is None
    assert first_difference(base, result([A.with_score(0.9), B.with_score(0.5)], [A.with_score(2.0)], "no")) == "answer"
    assert first_difference(base, result([A.with_score(0.9), B.with_score(0.5)], [B.with_score(2.0)], "no")) == "compress"
    assert first_difference(base, result([A.with_score(0.9), B.with_score(0.5)], [A.with_score(2.1)], "yes")) == "compress"
    assert first_difference(base, result([B.with_score(0.9), A.with_score(0.5)], [B.with_score(2.0)], "no")) == "dense"
    assert first_difference(base, result([A.with_score(0.8), B.with_score(0.5)], [A.with_score(2.0)], "yes")) == "dense"
