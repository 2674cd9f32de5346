"""What a run's rows say, summarised: a markdown table per task (mean score, achieved ratio, time to
first token, decoding tokens per second, peak memory, failures) and a plot of score against achieved
ratio, one line per method (matplotlib, the ``viz`` extra)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ragpress.core.extras import require

Row = dict[str, Any]


def mean(values: Iterable[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def median(values: Iterable[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(rows: list[Row]) -> list[Row]:
    """One line per (task, model, method, ratio): the mean of each score over its examples (a failed
    row counts 0), the mean achieved ratio, and the median of each cost over the rows that answered (a
    method's first row also pays for loading its models, which a mean would spread over the rest)."""
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row["task"], row["model"], row["method"], row["ratio"]].append(row)
    lines = []
    for (task, model, method, ratio), group in groups.items():
        answered = [r for r in group if "error" not in r]
        names = dict.fromkeys(name for r in group for name in r["scores"])
        lines.append({
            "task": task, "model": model, "method": method, "ratio": ratio, "n": len(group), "errors": len(group) - len(answered),
            "scores": {name: mean(r["scores"].get(name, 0.0) for r in group) for name in names},
            "achieved_ratio": mean(r.get("achieved_ratio") for r in answered),
            **{key: median(r.get(key) for r in answered) for key in ("ttft_s", "tokens_per_s", "peak_gib")},
            "first_error": next((r["error"] for r in group if "error" in r), ""),
        })
    return lines


def cell(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    """The markdown table of :func:`summarise`'s lines, one section per task and model."""
    lines = summarise(rows)
    out = []
    for task, model in dict.fromkeys((line["task"], line["model"]) for line in lines):
        mine = [line for line in lines if (line["task"], line["model"]) == (task, model)]
        extra = [name for name in mine[0]["scores"] if name != "score"]
        out += [f"### {task} ({model}, {mine[0]['n']} examples)", "",
                "| method | ratio asked | score | " + "".join(f"{name} | " for name in extra)
                + "achieved ratio | TTFT (s, median) | tokens/s (median) | peak GiB (median) | failed |",
                "|---|---:|---:|" + "---:|" * len(extra) + "---:|---:|---:|---:|---:|"]
        for line in mine:
            scores = "".join(f"{cell(line['scores'].get(name))} | " for name in extra)
            failed = f"{line['errors']} ({line['first_error'][:60]})" if line["errors"] else "0"
            out.append(f"| {line['method']} | {line['ratio'] or '–'} | {cell(line['scores']['score'])} | {scores}"
                       f"{cell(line['achieved_ratio'], 1)} | {cell(line['ttft_s'])} | {cell(line['tokens_per_s'], 1)} | "
                       f"{cell(line['peak_gib'])} | {failed} |")
        out.append("")
    return "\n".join(out)


def plot(rows: list[Row], path: str | Path, title: str = "") -> Path:
    """Score against achieved ratio (log scale), one line per method and one panel per task; full context
    sits at ratio 1, and no context, which has no ratio, is a dashed line."""
    require("matplotlib", what="the score-vs-ratio plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = summarise(rows)
    tasks = list(dict.fromkeys(line["task"] for line in lines))
    methods = list(dict.fromkeys(line["method"] for line in lines))
    colours = {m: plt.get_cmap("tab20")(i % 20) for i, m in enumerate(methods)}  # one colour per method in every panel
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mine = [line for line in lines if line["task"] == task]
        for method in dict.fromkeys(line["method"] for line in mine):
            points = sorted((line["achieved_ratio"] or 1.0, line["scores"]["score"]) for line in mine if line["method"] == method)
            if method == "none":
                ax.axhline(points[0][1], color="grey", linestyle="--")
            elif points:
                ax.plot(*zip(*points), marker="o", color=colours[method])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("achieved compression ratio (tokens in / tokens read)")
        ax.set_ylabel("score")
        ax.set_title(f"{task} ({mine[0]['model']}, n={mine[0]['n']})")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color="grey" if m == "none" else colours[m], linestyle="--" if m == "none" else "-",
                          marker="" if m == "none" else "o") for m in methods]
    axes[0][-1].legend(handles, methods, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_report(rows: list[Row], out: str | Path) -> None:
    """``out/table.md`` and, when matplotlib is installed, ``out/score_vs_ratio.png``."""
    out = Path(out)
    (out / "table.md").write_text(table(rows))
    if not rows:
        return
    try:
        plot(rows, out / "score_vs_ratio.png")
    except ImportError as error:
        print(f"No plot: {error}")
