"""Generators: ``Context -> Answer``.

Every back end asks the same thing: the prompt layout lives in :mod:`ragpress.core.prompt`
(numbered sources, then the question). The base class checks input and tags each Answer with the
method's name; back ends implement :meth:`Generator.generate` (and :meth:`Generator.generate_batch`
where they can batch) and :meth:`Generator.stream`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import ClassVar

from ragpress.core.prompt import SYSTEM_PROMPT, chat_messages
from ragpress.core.stage import Stage
from ragpress.core.types import Answer, Context

CONVERSATION = "conversation"  # Context.metadata key of the messages a chat front end sends as they are


@dataclasses.dataclass
class Generator(Stage):
    kind: ClassVar[str] = "generator"
    max_new_tokens: int = 128
    temperature: float = 0.0
    system_prompt: str = SYSTEM_PROMPT

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if self.temperature < 0:
            raise ValueError(f"temperature cannot be negative, got {self.temperature}.")

    def run(self, context: Context) -> Answer:
        return self.tag(self.generate(check_context(context)))

    def run_batch(self, contexts: list[Context]) -> list[Answer]:
        return [self.tag(answer) for answer in self.generate_batch([check_context(c) for c in contexts])]

    def generate(self, context: Context) -> Answer:
        raise NotImplementedError

    def generate_batch(self, contexts: list[Context]) -> list[Answer]:
        return [self.generate(context) for context in contexts]

    def stream(self, context: Context) -> Iterator[str]:
        """Yield the answer's text as it is generated."""
        raise NotImplementedError

    def messages(self, context: Context) -> list[dict[str, str]]:
        """The chat messages this generator sends for ``context``: the conversation of a
        :func:`conversation` context as it is, else :func:`~ragpress.core.prompt.chat_messages`
        (numbered sources under :attr:`system_prompt`)."""
        given = context.metadata.get(CONVERSATION)
        return [dict(m) for m in given] if given is not None else chat_messages(context, self.system_prompt)


def conversation(messages: list[dict[str, str]]) -> Context:
    """A Context that asks a generator to continue ``messages`` (``{"role", "content"}`` dicts) as
    they are: roles kept, no sources and no system prompt of ragpress's added. Chat front ends (the
    LangChain chat model) send conversations this way; every back end that builds its prompt with
    :meth:`Generator.messages` answers them (RetroLM, which pages its sources, does not)."""
    if not messages or not all(isinstance(m, dict) and set(m) == {"role", "content"} and isinstance(m["content"], str) for m in messages):
        raise ValueError(f"A conversation is a non-empty list of {{'role': ..., 'content': str}} messages, got {messages!r}.")
    query = next((m["content"] for m in reversed(messages) if m["role"] == "user"), messages[-1]["content"])
    return Context(query=query, metadata={CONVERSATION: tuple(dict(m) for m in messages)})


def check_context(context: Context) -> Context:
    if not isinstance(context, Context):
        raise TypeError(f"A generator takes a Context, got {type(context).__name__}; put a compressor before it.")
    return context
