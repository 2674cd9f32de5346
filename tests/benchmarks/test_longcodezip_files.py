"""The file rule of benchmarks/batch_throughput.py: it admits only code whose every function fits the
budget, so LongCodeZip keeps a function of each admitted file whatever the scores, and it says why it
left each other file out."""

from __future__ import annotations

from benchmarks.longcodezip import largest_function, select_files
from ragpress.compressors.longcodezip import LongCodeZip
from ragpress.core.types import Chunk, Document

SMALL = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(8))
BIG = "def big(x):\n" + "".join(f"    x = x * {i} + {i}\n" for i in range(60)) + "    return x\n\n\n" + SMALL


def test_rule_admits_files_whose_functions_fit_and_names_the_rest(tiny_lm_path):
    compressor = LongCodeZip(model=tiny_lm_path, ratio=3.0, fine_ratio=1.0, device="cpu")
    largest, budget = largest_function(compressor, BIG)
    assert largest > budget  # the 60-line function alone is over a third of the file
    small_largest, small_budget = largest_function(compressor, SMALL)
    assert small_largest <= small_budget
    tasks = [{"module": "big", "code": BIG}, {"module": "small", "code": SMALL}, {"module": "again", "code": SMALL}]
    kept, excluded = select_files(tasks, compressor, 1)
    assert [t["module"] for t in kept] == ["small"]
    assert excluded == [f"big: a {largest}-token function over the {budget}-token budget"]
    context = compressor.run_batch(["Complete f3."], [[Chunk.of(Document(SMALL), 0, len(SMALL))]])[0]
    assert context.pieces and any(f["selected"] for f in context.metadata["functions"])

