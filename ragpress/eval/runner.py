"""Run methods on a task and keep every answer: ``ragpress.eval.run(task=..., methods=..., ratios=...)``.

Each (example, method, ratio) becomes one JSON line in ``OUT/predictions.jsonl``, written as soon
as it is answered, so an interrupted run resumes where it stopped (rows already there are skipped,
failed ones too: delete a line to retry it). A row holds the prediction, its scores, the tokens
before and after compression, and the costs: time to first token (preparation, compression and
the first streamed text), decoding tokens per second and peak memory (the GPU's allocated peak for
this row; on the CPU the process's peak resident set, which only grows). ``OUT/table.md`` and
``OUT/score_vs_ratio.png`` summarise the file (:mod:`ragpress.eval.report`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragpress.core.decode import check_decode
from ragpress.core.types import Document
from ragpress.eval.example import Example
from ragpress.eval.methods import METHODS, Approach, Method, Prepared, Setup
from ragpress.eval.registry import TASKS, generate
from ragpress.eval.scoring import edit_similarity, exact_match, f1, string_match_all, string_match_any
from ragpress.eval.user_tasks import load_jsonl

FAMILIES = {"code_completion": "code", "wiki_cloze": "qa"} | {t: "ruler" for t in TASKS if t.startswith("niah_")}
FAMILIES |= {"variable_tracking": "ruler", "common_words": "ruler"}
SCORES = {  # the first is the task's score; user tasks are scored as QA
    "ruler": {"score": lambda p, a: string_match_all(p, a)},
    "qa": {"score": lambda p, a: string_match_any(p, a), "f1": lambda p, a: f1(p, a)},
    "code": {"score": lambda p, a: edit_similarity(p, a[0]), "exact_match": lambda p, a: exact_match(p, a[0])},
}
MAX_NEW_TOKENS = {"ruler": 48, "qa": 24, "code": 128}


def family(task: str) -> str:
    return FAMILIES.get(task, "qa")


def load_examples(task: str, limit: int, context_tokens: int, seed: int, model: str) -> list[Example]:
    """``limit`` examples of a registered task, or the first ``limit`` lines of a JSON-lines file."""
    if task.endswith(".jsonl"):
        return load_jsonl(task)[:limit]
    return generate(task, limit, context_tokens, seed, tokenizer=model)


def resolve_methods(names: Sequence[str] | None) -> list[Method]:
    names = list(names or METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise KeyError(f"Unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    return [METHODS[n] for n in names]


def count_tokens(model: str, text: str) -> int:
    from ragpress.core.loaders import load_tokenizer

    return len(load_tokenizer(model)(text, add_special_tokens=False)["input_ids"])


def peak_memory(device: str | None, reset: bool) -> float:
    """GiB at the peak: CUDA's allocated peak since the last reset, else the process's peak RSS."""
    import resource

    import torch

    if torch.cuda.is_available() and (device is None or device.startswith("cuda")):
        if reset:
            torch.cuda.reset_peak_memory_stats()
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def prepare(approach: Approach, text: str, model: str) -> tuple[Prepared, float]:
    """The method's query-independent work on ``text``, and its seconds."""
    started = time.perf_counter()
    prepared = approach.prepare(Prepared(Document(text), count_tokens(model, text)))
    return prepared, time.perf_counter() - started


def answer(approach: Approach, prepared: Prepared, question: str, answers: Sequence[str], task: str, setup: Setup) -> dict[str, Any]:
    """One question answered and scored, with its costs (seconds counted from the call)."""
    started = time.perf_counter()
    reply = approach.respond(prepared, question)
    first, parts = None, []
    for piece in reply.stream:
        if first is None and piece.strip():
            first = time.perf_counter()
        parts.append(piece)
    ended = time.perf_counter()
    text, read = "".join(parts).strip(), reply.context()
    generated = count_tokens(setup.model, text)
    decoding = ended - (first or ended)
    return {
        "prediction": text, "answers": list(answers),
        "scores": {name: round(score(text, answers), 4) for name, score in SCORES[family(task)].items()},
        "tokens_before": prepared.tokens, "tokens_after": read.tokens_after,  # before: the whole context, whatever a retriever returned
        "achieved_ratio": round(prepared.tokens / read.tokens_after, 3) if read.tokens_after else None,
        "ttft_s": round((first or ended) - started, 4), "answer_s": round(ended - started, 4), "completion_tokens": generated,
        "tokens_per_s": round((generated - 1) / decoding, 2) if generated > 1 and decoding > 0 else None,
    }


def measure(approach: Approach, example: Example, setup: Setup) -> dict[str, Any]:
    """Prepare, answer and score one example; time to first token includes the preparation."""
    peak_memory(setup.device, reset=True)
    prepared, seconds = prepare(approach, example.context, setup.model)
    row = answer(approach, prepared, example.question, example.answers, example.task, setup)
    row["prepare_s"] = round(seconds, 4)
    row["ttft_s"] = round(row["ttft_s"] + seconds, 4)
    row["peak_gib"] = round(peak_memory(setup.device, reset=False), 3)
    return row


@contextlib.contextmanager
def decoding(model: str, device: str | None, decode: str) -> Iterator[None]:
    """The run's decode path as the answering model's default for every call while the run lasts
    (LATTICE's and REBEL's batches decode on it too), the model's own default again after it:
    the model is shared with whatever else the process runs."""
    if decode == "auto":
        yield
        return
    from ragpress.core.loaders import load_causal_lm

    lm = load_causal_lm(model, device)
    before, lm.decode = lm.decode, check_decode(decode)
    try:
        yield
    finally:
        lm.decode = before


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def row_key(row: dict[str, Any]) -> tuple:
    return row["task"], row["id"], row["method"], row["ratio"], row["model"]


def one_per_key(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each :func:`row_key` once: an answered row over a failed one (a rerun retries failed
    rows and appends), else the first."""
    kept: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = row_key(row)
        if key not in kept or ("error" in kept[key] and "error" not in row):
            kept[key] = row
    return list(kept.values())


def run(task: str, methods: Sequence[str] | None = None, ratios: Sequence[float] = (2, 4, 8), model: str = "smollm2-135m",
        limit: int = 10, out: str | Path = "eval-out", context_tokens: int = 4096, seed: int = 0,
        max_new_tokens: int | None = None, device: str | None = None, decode: str = "auto", report: bool = True,
        shard: tuple[int, int] = (0, 1)) -> list[dict[str, Any]]:
    """Answer ``limit`` examples of ``task`` with each method at each of its ``ratios``, appending rows to
    ``out/predictions.jsonl`` (rows answered there already are skipped, failed ones tried again); returns
    this task's rows, each once (:func:`one_per_key`).
    ``report`` writes ``out/table.md`` and ``out/score_vs_ratio.png`` (needs matplotlib) for the file.
    ``shard=(i, n)`` answers only every n-th row of the run, from the i-th on: n workers, each with its own
    ``out`` (and GPU), answer the run between them; :mod:`ragpress.eval.merge` joins their files."""
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard=({index}, {count}) names no shard: it must be (i, n) with 0 <= i < n, e.g. (0, 2) and (1, 2)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "predictions.jsonl"
    chosen = resolve_methods(methods)
    examples = load_examples(task, limit, context_tokens, seed, model)
    kind = family(examples[0].task if examples else task)  # a JSON-lines file is named after its task (code_completion.jsonl)
    setup = Setup(model=model, device=device, seed=seed, max_new_tokens=max_new_tokens or MAX_NEW_TOKENS[kind], decode=decode)
    done = {row_key(r) for r in read_rows(path) if "error" not in r}  # a failed row is tried again
    position = -1  # of the row in the whole run, whichever shard answers it
    with decoding(model, device, decode), path.open("a") as sink:
        for method in chosen:
            if method.tasks is not None and kind not in method.tasks:
                print(f"skip {method.name}: it applies to {', '.join(method.tasks)} tasks, not {kind}")
                continue
            for ratio in method.runs_at(list(ratios)):
                approach = method.build(setup, ratio)
                for example in examples:
                    position += 1
                    head = {"task": example.task, "family": kind, "id": example.id, "method": method.name, "ratio": ratio, "model": model}
                    if position % count != index or row_key(head) in done:
                        continue
                    try:
                        row = head | measure(approach, example, setup)
                    except Exception as error:  # a method that cannot answer scores 0 and says why
                        row = head | {"error": f"{type(error).__name__}: {error}"[:500], "scores": {"score": 0.0}}
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
                    print(f"{example.id} {method.name} {ratio}: {row.get('scores')} {row.get('prediction', row.get('error', ''))[:60]!r}")
    rows = one_per_key(read_rows(path))
    if report:
        from ragpress.eval.report import write_report

        write_report(rows, out)
    return [r for r in rows if r["task"] in {e.task for e in examples}]
