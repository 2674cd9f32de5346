"""Any ragpress generator as a LlamaIndex LLM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import Field, InstanceOf

from ragpress.core.types import Answer
from ragpress.generators.base import Generator
from ragpress.integrations._common import in_thread
from ragpress.integrations.llama_index.serialize import AsDict


def as_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role.value, "content": m.content or ""} for m in messages]


def as_user(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def as_chat(text: str, delta: str | None = None, **extra: Any) -> ChatResponse:
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta, additional_kwargs=extra)


class RagpressLLM(CustomLLM):
    """Any ragpress generator (one that implements :meth:`~ragpress.generators.base.Generator.chat`)
    as a LlamaIndex chat LLM. LlamaIndex's messages reach the model through the generator's chat
    template as they are, roles kept (``complete`` sends its prompt as one user message); ragpress's
    RAG system prompt, written for numbered sources, is not used. ``context_window`` tells
    LlamaIndex how much prompt to build. The async forms generate in a worker thread, so
    concurrent queries overlap, and the streams yield the text as it is generated."""

    generator: Annotated[InstanceOf[Generator], AsDict] = Field(description="The ragpress generator that answers.")
    context_window: int = Field(default=2048, gt=0, description="Tokens of prompt the model can take.")

    def __init__(self, generator: Generator, **kwargs: Any):
        super().__init__(generator=generator, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "RagpressLLM"

    @property
    def metadata(self) -> LLMMetadata:
        name = getattr(self.generator, "model", type(self.generator).__name__)
        return LLMMetadata(context_window=self.context_window, num_output=self.generator.max_new_tokens,
                           is_chat_model=True, model_name=str(name))

    def _pieces(self, messages: list[dict[str, str]]) -> Iterator[tuple[str, str]]:
        """(text so far, new piece) as the generator streams its reply."""
        text = ""
        for delta in self.generator.stream_chat(messages):
            text += delta
            yield text, delta

    @staticmethod
    def _tokens(answer: Answer) -> dict[str, int]:
        return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens}

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        answer = self.generator.chat(as_dicts(messages))
        return as_chat(answer.text, **self._tokens(answer))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        answer = self.generator.chat(as_user(prompt))
        return CompletionResponse(text=answer.text, additional_kwargs=self._tokens(answer))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return (as_chat(text, delta) for text, delta in self._pieces(as_dicts(messages)))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        pieces = self._pieces(as_user(prompt))
        return (CompletionResponse(text=text, delta=delta) for text, delta in pieces)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        answer = await asyncio.to_thread(self.generator.chat, as_dicts(messages))
        return as_chat(answer.text, **self._tokens(answer))

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        answer = await asyncio.to_thread(self.generator.chat, as_user(prompt))
        return CompletionResponse(text=answer.text, additional_kwargs=self._tokens(answer))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        async def pieces() -> ChatResponseAsyncGen:
            async for text, delta in in_thread(self._pieces(as_dicts(messages))):
                yield as_chat(text, delta)

        return pieces()

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        async def pieces() -> CompletionResponseAsyncGen:
            async for text, delta in in_thread(self._pieces(as_user(prompt))):
                yield CompletionResponse(text=text, delta=delta)

        return pieces()
