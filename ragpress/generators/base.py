"""Generators: ``Context -> Answer``.

Every back end asks the same thing: the prompt layout lives in :mod:`ragpress.core.prompt`
(numbered sources, then the question). The base class checks input and tags each Answer with the
method's name; back ends implement :meth:`Generator.generate` (and :meth:`Generator.generate_batch`
where they can batch) and :meth:`Generator.stream`.

A conversation (framework adapters build their own prompts, which must not land under ragpress's
RAG system prompt) goes through :meth:`Generator.chat` and :meth:`Generator.stream_chat`: a
:func:`conversation` context whose messages :meth:`Generator.messages` returns as they are, so
every back end that builds its prompt there answers it with no code of its own.
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
    answers_conversations: ClassVar[bool] = True  # False where the method needs sources (RetroLM)

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

    def chat(self, messages: list[dict[str, str]]) -> Answer:
        """Answer chat ``messages`` (``{"role", "content"}`` dicts) as they are, through the model's
        chat template: no sources, no :attr:`system_prompt` (a :func:`conversation` context run
        through :meth:`run`). The Answer's token counts are the prompt's and the reply's."""
        return self.run(self._conversation(messages))

    def stream_chat(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield the text of :meth:`chat`'s reply as it is generated."""
        return self.stream(self._conversation(messages))

    def _conversation(self, messages: list[dict[str, str]]) -> Context:
        if not self.answers_conversations:
            raise NotImplementedError(
                f"{type(self).__name__} answers only a Context (its method works on the sources); "
                "use TransformersGenerator or OpenAICompatibleGenerator to answer chat messages."
            )
        return conversation(messages)

    def messages(self, context: Context) -> list[dict[str, str]]:
        """The chat messages this generator sends for ``context``: the conversation of a
        :func:`conversation` context as it is, else :func:`~ragpress.core.prompt.chat_messages`
        (numbered sources under :attr:`system_prompt`)."""
        given = check_context(context).metadata.get(CONVERSATION)
        return [dict(m) for m in given] if given is not None else chat_messages(context, self.system_prompt)


def conversation(messages: list[dict[str, str]]) -> Context:
    """A Context that asks a generator to continue ``messages`` (``{"role", "content"}`` dicts) as
    they are: roles kept, no sources and no system prompt of ragpress's added. Its query is the last
    message. Every back end that builds its prompt with :meth:`Generator.messages` answers it."""
    if isinstance(messages, (str, dict)) or not messages:
        raise TypeError(f"A conversation is a non-empty list of {{'role', 'content'}} dicts, got {messages!r:.80}.")
    for i, message in enumerate(messages):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str) and isinstance(message.get("content"), str)):
            raise TypeError(f"Message {i} must be a dict with str 'role' and 'content', got {message!r:.80}.")
    chat = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    return Context(query=chat[-1]["content"], metadata={CONVERSATION: chat})


def check_context(context: Context) -> Context:
    if not isinstance(context, Context):
        raise TypeError(f"A generator takes a Context, got {type(context).__name__}; put a compressor before it.")
    return context
