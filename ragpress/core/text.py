"""Untrusted text, as tokenizers must read it: as text.

A retrieved document may contain the string of a special token (``<|im_end|>``, ``[SEP]``,
``<|eot_id|>``): read as that token, it would close a chat turn or start a new one inside a prompt.
It may contain lone surrogates (undecodable bytes kept by ``surrogateescape``), which tokenizers
refuse. :func:`harden` makes a tokenizer read both as plain text, for every model family, with the
tokenizer's own mechanism (``split_special_tokens``) rather than a list of known tokens; ragpress's
loaders harden every tokenizer they return. Code that tokenizes a *template* (the chat roles and
markers around the text) asks for special tokens explicitly (:func:`ragpress.core.prompt.encode_prompt`).
"""

from __future__ import annotations

import re
import threading
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def tokenizable(text: Any) -> Any:
    """``text`` (a str, or a list of them) with lone surrogates replaced by U+FFFD, one character for
    one, so character offsets stay valid."""
    if isinstance(text, str):
        return _SURROGATE.sub("\ufffd", text)
    if isinstance(text, (list, tuple)):
        return type(text)(tokenizable(t) for t in text)
    return text


def harden(tokenizer: Any) -> Any:
    """``tokenizer``, made to read special-token strings and lone surrogates in its input as text (in
    place; returned for convenience). Its class keeps its name, so ``save_pretrained`` writes the same files."""
    if getattr(tokenizer, "hardened", False):
        return tokenizer
    base = type(tokenizer)

    def __call__(self, text=None, text_pair=None, *args, **kwargs):
        with lock:  # a fast tokenizer switches special-token splitting on its shared backend: one call at a time
            return base.__call__(self, tokenizable(text), tokenizable(text_pair), *args, **kwargs)

    lock = threading.Lock()
    tokenizer.__class__ = type(base.__name__, (base,), {"__call__": __call__, "hardened": True, "__module__": base.__module__})
    tokenizer.split_special_tokens = True
    return tokenizer
