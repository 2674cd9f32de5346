"""The demo's questions over the Python language reference, each with the terms a right answer
contains, so that tests and benchmarks score answers the same way.

Every answer is stated in the reference (``pydoc_data.topics``); the terms are what any right
answer must say in some wording (``__exit__`` for what the ``with`` statement calls on exit), not
one sentence of the reference, and ``wrong`` lists terms that a right answer does not contain.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Question:
    """A question, the terms a right answer contains (any one of ``right``; none of ``wrong``),
    and the reference topic that answers it."""

    text: str
    right: tuple[str, ...]
    topic: str
    wrong: tuple[str, ...] = ()

    def is_answered_by(self, answer: str) -> bool:
        """Whether ``answer`` says one of the right terms and none of the wrong ones (case-insensitive)."""
        said = answer.lower()
        return any(t.lower() in said for t in self.right) and not any(t.lower() in said for t in self.wrong)


KEYED = (
    Question("What method does the with statement call when the block is exited?", ("__exit__",), "with"),
    Question("What exception does a failing assert statement raise?", ("AssertionError",), "assert", ("AttributeError",)),
    Question("What does the nonlocal statement do?", ("enclosing",), "nonlocal"),
    Question("When does the else clause of a for loop run?", ("exhausted", "without a break", "no break", "not terminated by", "StopIteration"), "for"),
    Question("What does the global statement do?", ("interpreted as global", "global variable", "global namespace"), "global"),
    Question("What does the pass statement do?", ("nothing", "null operation", "placeholder", "no-op"), "pass"),
    Question("Which method is called when normal attribute access fails?", ("__getattr__",), "attribute-access"),
    Question("What exception does division by zero raise?", ("ZeroDivisionError",), "binary"),
    Question("Which special method makes the in operator work for a user-defined class?", ("__contains__",), "comparisons"),
    Question("What exception is raised when a generator returns?", ("StopIteration",), "return"),
    Question("What does the continue statement do?", ("next cycle", "next iteration", "skip"), "continue"),
    Question("What does the break statement do?", ("terminat", "exit", "ends the", "stops"), "break"),
)
KEYS = {q.text: q for q in KEYED}

QUESTIONS = tuple(q.text for q in KEYED[:3])  # the demo's default questions

# All the keyed questions, for benchmarks that score or time many queries.
MORE_QUESTIONS = tuple(q.text for q in KEYED)
