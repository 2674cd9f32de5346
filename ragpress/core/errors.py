"""Errors that callers may want to tell apart from other bad input."""


class BudgetError(ValueError):
    """A budgeted compressor kept nothing: every piece of its input is larger than its token budget.
    A ``ValueError`` (a setting does not suit the input); adapters catch it to return no pieces with
    a warning instead of aborting a whole query."""
