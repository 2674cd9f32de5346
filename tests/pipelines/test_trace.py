"""Pipeline traces in a batch: each stage's time is the batch's share per query, and a model loaded
on first use is its own line, not part of the stage that asked for it."""

from __future__ import annotations

import dataclasses
import time
import uuid

from ragpress import Pipeline
from ragpress.core import Chunk, Stage
from ragpress.core.loaders import cached, timing_loads, unload

LOAD_S, WORK_S = 0.4, 0.08


@dataclasses.dataclass
class SlowStart(Stage):
    """Loads a model (``LOAD_S``) on first use, then works ``WORK_S`` per batch whatever its size."""

    kind = "retriever"
    model: str = "slow-start"

    def run(self, query: str) -> list[Chunk]:
        return self.run_batch([query])[0]

    def run_batch(self, queries: list[str]) -> list[list[Chunk]]:
        cached("test", self.model, lambda: time.sleep(LOAD_S) or object())
        time.sleep(WORK_S)
        return [[Chunk("q", 0, len(q), q)] for q in queries]


def test_loading_is_its_own_line_and_stage_time_is_the_batch_share():
    name = f"slow-{uuid.uuid4().hex}"
    rag = Pipeline().add("slow", SlowStart(model=name))
    try:
        first = rag.run_batch(["a", "b", "c", "d"])
        again = rag.run_batch(["e", "f", "g", "h"])
    finally:
        unload(name)
    for result in first:
        assert [(load.kind, load.name) for load in result.loads] == [("test", name)]
        assert result.loads[0].seconds >= LOAD_S
        share = result.trace[0].seconds
        assert WORK_S / 4 <= share < (WORK_S + LOAD_S) / 4 - 0.03, "the load was charged to the stage"
        assert result.seconds == share
        lines = result.table().splitlines()
        assert lines[1].startswith(f"load {name}") and f"{result.loads[0].seconds * 1000:.0f}" in lines[1]
    assert all(r.loads == () for r in again)
    assert all(WORK_S / 4 <= r.trace[0].seconds < WORK_S / 4 + 0.05 for r in again)


def test_a_model_built_inside_another_counts_in_the_outer_load_only():
    outer, inner = f"outer-{uuid.uuid4().hex}", f"inner-{uuid.uuid4().hex}"
    try:
        with timing_loads() as loads:
            cached("test", outer, lambda: cached("test", inner, lambda: time.sleep(0.05) or object()))
    finally:
        unload(outer), unload(inner)
    assert [load.name for load in loads] == [outer] and loads[0].seconds >= 0.05
