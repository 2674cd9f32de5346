"""SCBench's shared-context mode (Li et al. 2024, "SCBench: A KV Cache-Centric Analysis of
Long-Context Methods", Sec. 2: multi-request and multi-turn use of one context): several questions
over one context. A method prepares the context once (:meth:`Approach.prepare`) and answers every
question from what it prepared, so a query-agnostic method (CompLLM, ARC-Encoder, RetroLM's pages,
the blind baselines) compresses or caches once, while a query-aware one (GemFilter, Provence, EDU,
LongLLMLingua) reads the whole context again per question. The per-context cost (seconds, tokens a
model read) is where the two part ways; a query-agnostic cut also cannot know which part the next
question needs, which is where the scores part ways.

The questions come from a needle task with several keys (``niah_multikey``, ``niah_multiquery``):
one question per needle key, its value the answer, read back from the needle sentence."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragpress.eval.example import Example
from ragpress.eval.methods import Setup
from ragpress.eval.niah import question
from ragpress.eval.report import cell, mean
from ragpress.eval.runner import (
    MAX_NEW_TOKENS,
    answer,
    decoding,
    load_examples,
    peak_memory,
    prepare,
    read_rows,
    resolve_methods,
)


def shared_questions(example: Example, count: int) -> list[tuple[str, tuple[str, ...]]]:
    """``count`` (question, answers) pairs over ``example``'s context, one per needle key."""
    keys = list(example.metadata.get("keys", ()))
    if len(keys) < count:
        raise ValueError(f"{example.task} has {len(keys)} needle key(s) per context, fewer than {count} questions; "
                         "use niah_multikey or niah_multiquery (4 keys), or ask fewer questions")
    out = []
    for key in keys[:count]:
        values = re.findall(rf"magic numbers for {re.escape(key)} is: (\d+)\.", example.context)
        out.append((question([key], len(values)), tuple(values)))
    return out


def run_shared(task: str, questions: int = 4, methods: Sequence[str] | None = None, ratios: Sequence[float] = (2, 4, 8),
               model: str = "smollm2-135m", limit: int = 4, out: str | Path = "eval-out", context_tokens: int = 4096,
               seed: int = 0, max_new_tokens: int | None = None, device: str | None = None, decode: str = "auto") -> list[dict[str, Any]]:
    """Each method at each ratio prepares each of ``limit`` contexts once and answers ``questions`` questions
    over it; rows go to ``out/shared.jsonl`` (a context whose rows are there is skipped) and the table of
    score and per-context cost to ``out/shared.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "shared.jsonl"
    setup = Setup(model=model, device=device, seed=seed, max_new_tokens=max_new_tokens or MAX_NEW_TOKENS["ruler"], decode=decode)
    examples = load_examples(task, limit, context_tokens, seed, model)
    done = {(r["context"], r["method"], r["ratio"], r["model"]) for r in read_rows(path)}
    with decoding(model, device, decode), path.open("a") as sink:
        for method in resolve_methods(methods):
            for ratio in method.runs_at(list(ratios)):
                approach = method.build(setup, ratio)
                for example in examples:
                    if (example.id, method.name, ratio, model) in done:
                        continue
                    head = {"task": example.task, "context": example.id, "method": method.name, "ratio": ratio, "model": model,
                            "query_aware": approach.query_aware}
                    try:
                        peak_memory(device, reset=True)
                        prepared, seconds = prepare(approach, example.context, model)
                        rows = [head | {"question": i, "prepare_s": round(seconds, 4) if i == 0 else 0.0,
                                        "prepare_tokens": prepared.tokens if approach.reads_in_prepare and i == 0 else 0}
                                | answer(approach, prepared, q, answers, example.task, setup)
                                for i, (q, answers) in enumerate(shared_questions(example, questions))]
                        for row in rows:
                            row["question_tokens"] = row["tokens_after"] + (prepared.tokens if approach.reads_per_question else 0)
                            row["peak_gib"] = round(peak_memory(device, reset=False), 3)
                    except Exception as error:  # a method that cannot answer scores 0 and says why
                        rows = [head | {"question": 0, "error": f"{type(error).__name__}: {error}"[:500], "scores": {"score": 0.0}}]
                    sink.write("".join(json.dumps(row) + "\n" for row in rows))
                    sink.flush()
                    print(f"{example.id} {method.name} {ratio}: {[r['scores']['score'] for r in rows]}")
    rows = [r for r in read_rows(path) if r["task"] in {e.task for e in examples}]
    (out / "shared.md").write_text(shared_table(rows))
    return rows


def shared_table(rows: list[dict[str, Any]]) -> str:
    """Per method and ratio: mean score over questions, and per context the seconds (prepare + every
    answer), the seconds of the preparation alone, and the tokens any model read."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["task"], row["model"], row["method"], row["ratio"]].append(row)
    out = ["| task | model | method | ratio asked | query-aware | score | s per context | prepare s | tokens read per context | failed |",
           "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for (task, model, method, ratio), group in groups.items():
        contexts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in group:
            contexts[row["context"]].append(row)
        answered = [c for c in contexts.values() if not any("error" in r for r in c)]
        seconds = mean(sum(r["prepare_s"] + r["answer_s"] for r in c) for c in answered)
        read = mean(sum(r["prepare_tokens"] + r["question_tokens"] for r in c) for c in answered)
        aware = "yes" if group[0]["query_aware"] else "no"
        out.append(f"| {task} | {model} | {method} | {ratio or '–'} | {aware} | {cell(mean(r['scores']['score'] for r in group))} | "
                   f"{cell(seconds)} | {cell(mean(sum(r['prepare_s'] for r in c) for c in answered))} | {cell(read, 0)} | "
                   f"{len(contexts) - len(answered)} |")
    return "\n".join(out) + "\n"
