"""benchmarks/batch_throughput.py keeps what it measured when a later step fails, and its inputs draw on
the standard library's packages after its top-level modules."""

from __future__ import annotations

import json

import pytest

from benchmarks.batch_inputs import stdlib_modules
from benchmarks.batch_throughput import Report


def test_report_writes_each_row_and_number_as_it_comes(tmp_path, capsys):
    path = tmp_path / "out.json"
    report = Report(str(path))
    report.row("PPL chunking", 4, 2.0, 0.5, 0.98)
    assert json.loads(path.read_text())["rows"] == [["PPL chunking", 4, 2.0, 0.5, 0.98]]
    assert "PPL chunking" in capsys.readouterr().out  # printed before anything else runs
    report.note(lcz_files=3)
    assert json.loads(path.read_text()) == {"rows": [["PPL chunking", 4, 2.0, 0.5, 0.98]], "lcz_files": 3}
    Report(None).row("no file", 1, 1.0, 1.0, 1.0)  # printing only


def test_stdlib_candidates_are_top_level_modules_then_package_modules_without_tests():
    paths = stdlib_modules()
    depth = [len(p.parts) for p in paths]
    first_package = depth.index(max(depth))
    assert first_package > 50 and len(paths) > first_package + 50
    assert all(d == depth[0] for d in depth[:first_package]) and all(d == depth[0] + 1 for d in depth[first_package:])
    assert not any(p.parent.name in ("test", "tests", "idlelib") for p in paths)


def test_phases_split_a_call_and_put_the_functions_back(tiny_lm):
    import time

    import torch

    from benchmarks._common import phases
    from ragpress.chunkers.meta_chunking import keep_margins, margin

    pairs = [("The cat sat.", "It purred.", "The cat sat. It purred."), ("A.", "B.", "A. B.")]
    prompts = margin.prompt_ids

    def slow_prompts(lm, asked):
        time.sleep(0.2)
        return prompts(lm, asked)

    margin.prompt_ids = slow_prompts
    try:
        split = phases(lambda: keep_margins(tiny_lm, pairs), torch.device("cpu"), prompts=(margin, "prompt_ids"), forwards=(tiny_lm.model, "forward"))
    finally:
        margin.prompt_ids = prompts
    assert split["prompts"] >= 0.2 and split["forwards"] > 0 and split["other"] >= 0
    assert split["total"] == pytest.approx(split["prompts"] + split["forwards"] + split["other"], abs=2e-3)
    assert "forward" not in vars(tiny_lm.model)  # the class's method again, not a leftover timer
