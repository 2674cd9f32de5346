"""Shards of one run answer each row once between them, and merging their files (with an earlier,
cut-short run's) gives each row once, an answered row over a failed one, in the run's method order."""

import json

import pytest

from ragpress.cli import main
from ragpress.eval import runner
from ragpress.eval.merge import merge, merge_rows

TINY = dict(limit=2, context_tokens=256, max_new_tokens=2, report=False)
METHODS = ["none", "first_k", "bm25"]


def keys(rows):
    return sorted(runner.row_key(r) for r in rows)


def test_shards_answer_every_row_of_the_run_once_and_merge_into_its_rows(tiny_lm_path, tmp_path):
    whole = runner.run("niah_single", METHODS, ratios=[2, 4], model=tiny_lm_path, out=tmp_path / "whole", **TINY)
    parts = [runner.run("niah_single", METHODS, ratios=[2, 4], model=tiny_lm_path, out=tmp_path / f"s{i}", shard=(i, 3), **TINY)
             for i in range(3)]
    assert all(parts) and sum(len(p) for p in parts) == len(whole) == 10
    assert keys(r for p in parts for r in p) == keys(whole)
    merged = merge([tmp_path / f"s{i}" / "predictions.jsonl" for i in (2, 0, 1)], tmp_path / "merged", methods=METHODS, report=False)
    assert [runner.row_key(r) for r in merged] == [runner.row_key(r) for r in whole]  # the run's order again
    assert [r["prediction"] for r in merged] == [r["prediction"] for r in whole]  # greedy: the same answers


def test_a_shard_skips_rows_an_earlier_run_did(tiny_lm_path, tmp_path, monkeypatch):
    earlier = runner.run("niah_single", METHODS, ratios=[2], model=tiny_lm_path, out=tmp_path, **TINY)
    monkeypatch.setattr(runner, "measure", lambda *a, **k: pytest.fail("a done row was measured again"))
    for i in range(2):
        runner.run("niah_single", METHODS, ratios=[2], model=tiny_lm_path, out=tmp_path, shard=(i, 2), **TINY)
    assert len(runner.read_rows(tmp_path / "predictions.jsonl")) == len(earlier)


def test_a_rerun_tries_failed_rows_again_and_returns_each_row_once(tiny_lm_path, tmp_path, monkeypatch):
    answer = runner.measure
    monkeypatch.setattr(runner, "measure", lambda approach, example, setup: 1 / 0 if example.id.endswith("/1") else answer(approach, example, setup))
    first = runner.run("niah_single", ["none"], model=tiny_lm_path, out=tmp_path, **TINY)
    assert ["error" in r for r in first] == [False, True]
    tried = []
    monkeypatch.setattr(runner, "measure", lambda approach, example, setup: tried.append(example.id) or answer(approach, example, setup))
    second = runner.run("niah_single", ["none"], model=tiny_lm_path, out=tmp_path, **TINY)
    assert tried == [first[1]["id"]]  # the answered row is not asked again
    assert keys(second) == keys(first) and not any("error" in r for r in second)
    assert len(runner.read_rows(tmp_path / "predictions.jsonl")) == 3  # the failed row stays in the file, outranked


def test_merge_keeps_each_row_once_preferring_an_answered_one(tmp_path):
    row = lambda method, ratio, i, **more: {"task": "t", "id": f"t/{i}", "method": method, "ratio": ratio, "model": "m", "scores": {"score": 1.0}, **more}
    failed = row("dense", 2, 0, error="OOM", scores={"score": 0.0})
    first = [row("dense", 4, 0), failed, row("full", None, 0)]
    second = [row("dense", 2, 0, prediction="x"), row("dense", 4, 0, prediction="later copy"), row("full", None, 1)]
    for name, rows in (("a.jsonl", first), ("b.jsonl", second)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    merged = merge([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], tmp_path / "out", methods=["full", "dense"], report=False)
    assert [(r["method"], r["ratio"], r["id"]) for r in merged] == [("full", None, "t/0"), ("full", None, "t/1"), ("dense", 2, "t/0"), ("dense", 4, "t/0")]
    assert merged[2].get("prediction") == "x" and "prediction" not in merged[3]  # answered beats failed; else the first file's
    assert runner.read_rows(tmp_path / "out" / "predictions.jsonl") == merged
    assert len(merge_rows(first + first + second)) == 4


def test_merge_names_a_missing_file_and_the_command_line_rejects_a_bad_shard(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        merge([tmp_path / "nowhere.jsonl"], tmp_path / "out")
    with pytest.raises(SystemExit):
        main(["eval", "--task", "niah_single", "--shard", "2/2"])
    assert "--shard takes I/N" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--task", "niah_single", "--gpu-memory-fraction", "1.5"])
    assert "0 < F <= 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="names no shard"):
        runner.run("niah_single", ["none"], shard=(3, 2), out=tmp_path)


def test_command_line_shard_writes_its_rows_and_no_table(tiny_lm_path, tmp_path):
    common = ["eval", "--task", "niah_single", "--methods", "none", "first_k", "--ratios", "2", "--model", tiny_lm_path,
              "--limit", "1", "--context-tokens", "256", "--max-new-tokens", "2"]
    assert main([*common, "--shard", "1/2", "--gpu-memory-fraction", "0.5", "--out", str(tmp_path / "s1")]) == 0  # no GPU: no cap
    assert [r["method"] for r in runner.read_rows(tmp_path / "s1" / "predictions.jsonl")] == ["first_k"]
    assert not (tmp_path / "s1" / "table.md").exists()


def test_the_runs_decode_path_is_the_models_default_while_it_runs_and_not_after(tiny_lm_path, tmp_path, monkeypatch):
    from ragpress.models import load_causal_lm

    lm = load_causal_lm(tiny_lm_path)
    monkeypatch.setattr(lm, "decode", "auto")  # restored after the test: the model is shared
    answer, seen = runner.measure, []
    monkeypatch.setattr(runner, "measure", lambda *a: seen.append(lm.decode) or answer(*a))
    runner.run("niah_single", ["none"], model=tiny_lm_path, out=tmp_path, decode="eager", **TINY)
    assert seen == ["eager", "eager"]  # what LATTICE's and REBEL's chat_batch calls decode with
    assert lm.decode == "auto"  # the process's other users of the model get its default back
    monkeypatch.setattr(runner, "measure", lambda *a: 1 / 0)
    runner.run("niah_single", ["none", "first_k"], model=tiny_lm_path, out=tmp_path, decode="static", **TINY)
    assert lm.decode == "auto"  # also when rows fail


def test_a_task_file_is_scored_and_filtered_as_the_task_it_is_named_after(tiny_lm_path, tmp_path):
    from ragpress.eval.registry import generate

    example = generate("code_completion", 1, 256, tokenizer=tiny_lm_path)[0]
    path = tmp_path / "code_completion.jsonl"
    path.write_text(json.dumps({"context": example.context, "question": example.question, "answers": list(example.answers)}) + "\n")
    rows = runner.run(str(path), ["none", "first_k"], ratios=[2], model=tiny_lm_path, out=tmp_path, **TINY)
    assert {r["family"] for r in rows} == {"code"} and all("exact_match" in r["scores"] for r in rows)
