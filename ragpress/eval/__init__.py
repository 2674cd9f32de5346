"""Evaluation tasks, generated offline and seeded (issue 16, first slice): RULER's synthetic tasks,
cloze QA over Wikipedia articles, code completion over the standard library, user tasks from JSON
lines, and their scoring functions; the methods to compare (:mod:`ragpress.eval.methods`) and the
runner that scores them at several ratios (:func:`run`, ``ragpress eval``).

>>> from ragpress import eval as rpe
>>> examples = rpe.generate("niah_single", n=2, context_tokens=4096, seed=0)
>>> rpe.string_match_all(f"The number is {examples[0].answers[0]}.", examples[0].answers)
1.0
"""

from ragpress.eval import code_completion, common_words, niah, variable_tracking, wiki_cloze  # noqa: F401  (each registers its tasks)
from ragpress.eval.example import Example
from ragpress.eval.registry import TASKS, generate, register
from ragpress.eval.runner import run
from ragpress.eval.scoring import edit_similarity, exact_match, f1, string_match_all, string_match_any
from ragpress.eval.user_tasks import load_jsonl

__all__ = [
    "TASKS", "Example", "edit_similarity", "exact_match", "f1", "generate", "load_jsonl", "register", "run", "string_match_all", "string_match_any",
]
