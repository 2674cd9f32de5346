"""Errors that callers may want to tell apart from other failures."""


class BudgetTooSmallError(ValueError):
    """A budgeted compressor could keep nothing: every unit of its input is larger than its token
    budget. A ``ValueError``, so callers that caught that still work; adapters catch exactly this to
    hand back an empty result instead of failing a whole chain."""


class UnknownSettingError(TypeError, ValueError):
    """A stage was given a setting it does not have. A ``TypeError``, as Python raises for an unknown
    keyword argument (what framework users building a stage in code expect), and a ``ValueError``, as
    for any other bad pipeline file. The message lists the stage's settings and, where the name is
    another library's spelling (LangChain's ``top_n``), ragpress's."""
