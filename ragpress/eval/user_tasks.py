"""User tasks from JSON lines: one object a line with ``context``, ``question`` and ``answers`` (a
list of strings), optionally ``id`` and ``metadata``; blank lines are skipped. Each error names the
file, the line and what to fix."""

from __future__ import annotations

import json
from pathlib import Path

from ragpress.eval.example import Example

REQUIRED = ("context", "question", "answers")


def load_jsonl(path: str | Path, task: str | None = None) -> list[Example]:
    """The examples of ``path``; ``task`` defaults to the file's stem."""
    path = Path(path)
    task = task or path.stem
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error.msg} at column {error.colno}); write one JSON object a line") from error
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object with {', '.join(REQUIRED)}, got {type(row).__name__}")
        missing = [key for key in REQUIRED if key not in row]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}; each line needs {', '.join(REQUIRED)}")
        for key in ("context", "question"):
            if not isinstance(row[key], str):
                raise ValueError(f"{where}: {key!r} must be a string, got {type(row[key]).__name__}")
        answers = row["answers"]
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
            raise ValueError(f"{where}: 'answers' must be a non-empty list of non-empty strings, got {answers!r}")
        metadata = row.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ValueError(f"{where}: 'metadata' must be a JSON object, got {type(metadata).__name__}")
        examples.append(Example(
            id=str(row.get("id", f"{task}/{number}")), context=row["context"], question=row["question"],
            answers=tuple(answers), task=task, metadata=metadata,
        ))
    return examples
