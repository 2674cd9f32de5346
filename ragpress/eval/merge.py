"""Join the predictions of several runs (the shards of one run on several GPUs, an earlier run that was
cut short) into one ``predictions.jsonl``, each row once, and write its table and plot:

    python -m ragpress.eval.merge OUT SHARD_OUT/predictions.jsonl ... [--methods full none dense ...]

A row is one (task, example, method, ratio, model), as :func:`ragpress.eval.runner.row_key` names it;
where several files hold it, an answered row wins over a failed one, then the first file's. Rows come
out grouped by task (in the order the files first show them), then in the order of ``methods`` (the
run's ``--methods``; others after them), ratio and example, so the table lists methods as the run did.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragpress.eval.runner import one_per_key, read_rows


def merge_rows(rows: Sequence[dict[str, Any]], methods: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``rows`` with each row key once (an answered row over a failed one, else the first), ordered by
    task, method (``methods`` first, in their order), ratio and example."""
    kept = one_per_key(rows)
    tasks = list(dict.fromkeys(row["task"] for row in kept))
    rank = {name: i for i, name in enumerate(methods)}

    def order(row: dict[str, Any]) -> tuple:
        ratio = row["ratio"]
        return tasks.index(row["task"]), rank.get(row["method"], len(rank)), row["method"], ratio is not None, ratio or 0, row["id"]

    return sorted(kept, key=order)


def merge(sources: Sequence[str | Path], out: str | Path, methods: Sequence[str] = (), report: bool = True) -> list[dict[str, Any]]:
    """The rows of every ``sources`` file merged (:func:`merge_rows`) into ``out/predictions.jsonl``
    (which may be one of the sources: all are read before it is written); ``report`` writes
    ``out/table.md`` and ``out/score_vs_ratio.png``."""
    missing = [str(s) for s in sources if not Path(s).exists()]
    if missing:
        raise FileNotFoundError(f"No predictions file at {', '.join(missing)}: name the predictions.jsonl each run or shard wrote")
    rows = merge_rows([row for source in sources for row in read_rows(Path(source))], methods)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = out / "predictions.jsonl.tmp"
    written.write_text("".join(json.dumps(row) + "\n" for row in rows))
    written.replace(out / "predictions.jsonl")
    if report:
        from ragpress.eval.report import write_report

        write_report(rows, out)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ragpress.eval.merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for the merged predictions.jsonl, table.md and score_vs_ratio.png")
    parser.add_argument("sources", nargs="+", help="predictions.jsonl files of the shards and earlier runs")
    parser.add_argument("--methods", nargs="*", default=(), help="the run's methods, in the order the table should list them")
    parser.add_argument("--no-report", action="store_true", help="write predictions.jsonl only")
    args = parser.parse_args(argv)
    rows = merge(args.sources, args.out, args.methods, report=not args.no_report)
    print(f"{len(rows)} rows from {len(args.sources)} file(s) into {args.out}/predictions.jsonl")


if __name__ == "__main__":
    main()
