"""Tasks by name. A task is a function ``(n, context_tokens, seed, tokenizer) -> list[Example]``,
deterministic for a fixed seed; :func:`generate` resolves a tokenizer name and calls it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ragpress.eval.example import Example

Task = Callable[[int, int, int, Any], list[Example]]
TASKS: dict[str, Task] = {}
DEFAULT_TOKENIZER = "smollm2-135m"


class SeededTask:
    """A task whose examples are drawn one after another from one random stream, seeded by the
    task's ``name`` and ``seed``; subclasses write :meth:`example`."""

    name: str

    def __call__(self, n: int, context_tokens: int, seed: int, tokenizer: Any) -> list[Example]:
        rng = random.Random(f"{self.name}/{seed}")
        return [self.example(i, context_tokens, rng, tokenizer) for i in range(n)]

    def example(self, index: int, context_tokens: int, rng: random.Random, tokenizer: Any) -> Example:
        raise NotImplementedError


def register(name: str) -> Callable[[Task], Task]:
    """Add a task to :data:`TASKS` under ``name``."""

    def add(task: Task) -> Task:
        if name in TASKS:
            raise ValueError(f"A task named {name!r} is already registered; pick another name")
        TASKS[name] = task
        return task

    return add


def resolve_tokenizer(tokenizer: Any) -> Any:
    """A tokenizer object: a name or path is loaded (cached) through ``ragpress.models``."""
    if isinstance(tokenizer, str):
        from ragpress.models import load_tokenizer

        return load_tokenizer(tokenizer)
    return tokenizer


def generate(name: str, n: int, context_tokens: int = 4096, seed: int = 0, tokenizer: Any = DEFAULT_TOKENIZER) -> list[Example]:
    """``n`` examples of task ``name`` whose contexts hold about ``context_tokens`` tokens of ``tokenizer``."""
    if name not in TASKS:
        raise KeyError(f"Unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    if n < 1 or context_tokens < 64:
        raise ValueError(f"Task {name!r} needs n >= 1 and context_tokens >= 64, got n={n}, context_tokens={context_tokens}")
    return TASKS[name](n, context_tokens, seed, resolve_tokenizer(tokenizer))
