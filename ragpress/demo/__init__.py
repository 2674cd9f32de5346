"""The demo: what context compression buys in retrieval-augmented generation, shown over the
Python language reference that ships with Python (``pydoc_data.topics``) with the bundled models
(MiniLM for retrieval and for Provence's pruner, SmolLM2-135M-Instruct for answers).

:func:`run_demo` prints each answer with its kept sentences highlighted in their source passage;
:func:`run_compare` answers with and without compression side by side."""

from ragpress.demo.pipeline import compressor, demo_pipeline, load_models, python_reference, uncompressed
from ragpress.demo.questions import KEYED, KEYS, MORE_QUESTIONS, QUESTIONS, Question
from ragpress.demo.run import run_compare, run_demo

__all__ = [
    "KEYED", "KEYS", "MORE_QUESTIONS", "QUESTIONS", "Question", "compressor", "demo_pipeline", "load_models",
    "python_reference", "run_compare", "run_demo", "uncompressed",
]
