"""Handing a KV cache to a ``transformers`` model, and taking it back, in every version we support.

transformers 5.23 renamed the forward argument and output field ``past_key_values`` to ``cache``
(the old name warns and goes in 5.40); 5.17-5.22, which GPU images still ship, know only the old
name. Every call that passes a cache goes through :func:`cache_argument`, every read through
:func:`returned_cache`, so ragpress uses no deprecated name on any version."""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=None)
def _name(forward_type: type) -> str:
    parameters = inspect.signature(forward_type.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def cache_argument(model: Any, cache: Any) -> dict[str, Any]:
    """``{name: cache}`` for ``model(...)``, under the name this model's forward takes."""
    return {_name(type(model)): cache}


def returned_cache(output: Any) -> Any:
    """The cache a forward returned (``output.cache``, or ``output.past_key_values`` before 5.23)."""
    return output["cache"] if "cache" in output else output.get("past_key_values")
