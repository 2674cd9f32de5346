"""Methods to evaluate, by name (:data:`METHODS`): baselines, retrieval + BudgetPacker, text pruning,
KV-level and soft compression, and the LongLLMLingua peer row, each built from ragpress's own stages.

>>> from ragpress.eval.methods import METHODS
>>> METHODS["arc_encoder"].runs_at([2, 4, 8])
[4, 8]
"""

from ragpress.eval.methods import baselines, kv, peer, pruning, retrieval, soft  # noqa: F401  (each registers its methods)
from ragpress.eval.methods.base import METHODS, Approach, Method, Prepared, Reply, Setup, register_method

__all__ = ["METHODS", "Approach", "Method", "Prepared", "Reply", "Setup", "register_method"]
