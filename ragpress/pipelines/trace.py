"""What a pipeline run reports: each stage's share of the run (time, items and tokens in and out),
the models loaded on the way (timed apart from the stages), and the run's result with every
stage's output."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ragpress.core.loaders import Load
from ragpress.core.types import Answer, Chunk, Context


@dataclasses.dataclass(frozen=True)
class StageTrace:
    """One stage's share of one run: wall time, items and tokens in and out (None where unknown).
    In a batch of queries a stage runs once; each query's ``seconds`` is the batch's time over the
    number of queries, less any model loading (:attr:`Result.loads`)."""

    name: str
    stage: str
    seconds: float
    items_in: int
    items_out: int
    tokens_in: int | None
    tokens_out: int | None

    @property
    def tokens(self) -> str:
        """Tokens in and out as ``"in→out"``, ``?`` where unknown."""
        return "→".join("?" if n is None else str(n) for n in (self.tokens_in, self.tokens_out))


@dataclasses.dataclass(frozen=True)
class Result:
    query: str
    output: Any
    outputs: dict[str, Any]
    trace: tuple[StageTrace, ...]
    loads: tuple[Load, ...] = ()  # models the run's batch loaded, once for the whole batch

    @property
    def seconds(self) -> float:
        """The stages' time, model loading left out."""
        return sum(t.seconds for t in self.trace)

    def table(self, setup: Sequence[tuple[str, float]] = ()) -> str:
        """The trace as a plain-text table, ending with the run's total. The models the run loaded
        and ``setup`` (``(what, seconds)`` of one-off work done before the run) come first, on lines
        of their own, left out of the stages' times and the total."""
        rows = [("stage", "type", "ms", "items in→out", "tokens in→out")]
        rows += [(f"load {load.name}", f"{load.kind}, once for the batch", f"{load.seconds * 1000:.0f}", "", "") for load in self.loads]
        rows += [(name, "once, before the run", f"{seconds * 1000:.0f}", "", "") for name, seconds in setup]
        for t in self.trace:
            rows.append((t.name, t.stage, f"{t.seconds * 1000:.0f}", f"{t.items_in}→{t.items_out}", t.tokens))
        rows.append(("total", "", f"{self.seconds * 1000:.0f}", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def stage_trace(name: str, stage: Any, seconds: float, inputs: list[Any], output: Any) -> StageTrace:
    """The trace of one stage's share of one run, counting items and tokens where the data says them."""
    if isinstance(output, Context):
        tokens_in, tokens_out = output.tokens_before, output.tokens_after
    elif isinstance(output, Answer):
        tokens_in, tokens_out = output.prompt_tokens, output.completion_tokens
    else:
        counts = [_tokens(x) for x in inputs]
        tokens_in = None if None in counts or not counts else sum(counts)
        tokens_out = _tokens(output)
    items_in = sum(_items(x) for x in inputs) if inputs else 1
    return StageTrace(name, type(stage).__name__, seconds, items_in, _items(output), tokens_in, tokens_out)


def _tokens(value: Any) -> int | None:
    if isinstance(value, list) and all(isinstance(c, Chunk) and c.token_count is not None for c in value):
        return sum(c.token_count for c in value)
    return None


def _items(value: Any) -> int:
    if isinstance(value, Context):
        return len(value.pieces)
    return len(value) if isinstance(value, list) else 1
