"""Generators: ``Context -> Answer``.

Every back end asks the same thing: the prompt layout lives in :mod:`ragpress.core.prompt`
(numbered sources, then the question). The base class checks input and tags each Answer with the
method's name; back ends implement :meth:`Generator.generate` (and :meth:`Generator.generate_batch`
where they can batch) and :meth:`Generator.stream`.

Back ends that can also answer a conversation as it is (framework adapters build their own prompts,
which must not land under ragpress's RAG system prompt) implement :meth:`Generator.chat` and
:meth:`Generator.stream_chat`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import ClassVar

from ragpress.core.prompt import SYSTEM_PROMPT, chat_messages
from ragpress.core.stage import Stage
from ragpress.core.types import Answer, Context


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

    def chat(self, messages: list[dict[str, str]]) -> Answer:
        """Answer chat ``messages`` (``{"role", "content"}`` dicts) as they are, through the model's
        chat template: no sources, no :attr:`system_prompt`. The Answer's context holds only the
        last message as its query; its token counts are the prompt's and the reply's."""
        raise NotImplementedError(
            f"{type(self).__name__} answers only a Context (its method works on the sources); "
            "use TransformersGenerator or OpenAICompatibleGenerator to answer chat messages."
        )

    def stream_chat(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield the text of :meth:`chat`'s reply as it is generated."""
        raise NotImplementedError(f"{type(self).__name__} cannot stream a reply to chat messages; see Generator.chat.")

    def messages(self, context: Context) -> list[dict[str, str]]:
        """The chat messages this generator sends for ``context`` (:func:`~ragpress.core.prompt.chat_messages`)."""
        return chat_messages(context, self.system_prompt)


def check_context(context: Context) -> Context:
    if not isinstance(context, Context):
        raise TypeError(f"A generator takes a Context, got {type(context).__name__}; put a compressor before it.")
    return context


def check_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``messages`` as plain ``{"role", "content"}`` dicts, or an error naming the first bad one."""
    if isinstance(messages, (str, dict)) or not messages:
        raise TypeError(f"chat takes a non-empty list of {{'role', 'content'}} dicts, got {messages!r:.80}.")
    for i, message in enumerate(messages):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str) and isinstance(message.get("content"), str)):
            raise TypeError(f"Message {i} must be a dict with str 'role' and 'content', got {message!r:.80}.")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def chat_context(messages: list[dict[str, str]]) -> Context:
    """The Context an Answer to chat ``messages`` carries: the last message as its query, no sources."""
    return Context(query=messages[-1]["content"])
