"""Errors that callers may want to tell apart from other failures."""


class BudgetTooSmallError(ValueError):
    """A budgeted compressor could keep nothing: every unit of its input is larger than its token
    budget. A ``ValueError``, so callers that caught that still work; adapters catch exactly this to
    hand back an empty result instead of failing a whole chain."""
