"""Any ragpress generator as a LangChain chat model."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Annotated, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage, UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, InstanceOf, PlainSerializer, field_validator

from ragpress.core.loaders import load_tokenizer
from ragpress.core.prompt import content_spans, encode_prompt, render_chat
from ragpress.generators.base import Generator
from ragpress.generators.openai_compatible import OpenAICompatibleGenerator

ROLES = {"system": "system", "human": "user", "ai": "assistant"}  # LangChain message type -> chat template role


class RagpressChatModel(BaseChatModel):
    """Any ragpress generator as a LangChain chat model. The messages go through the generator's
    own chat template as they are (system, user and assistant roles kept; no ragpress RAG prompt is
    added), :meth:`_stream` yields the text as it is generated, and every reply carries usage
    metadata (input and output tokens). ``max_tokens`` and ``temperature`` override the generator's
    ``max_new_tokens`` and ``temperature``; ``stop`` cuts the reply before the first stop string; a
    per-call ``model=`` runs the same generator with another ``model``. Tool calling and structured
    output are not supported."""

    generator: Annotated[InstanceOf[Generator], PlainSerializer(lambda g: g.to_dict(), return_type=dict)] = Field(
        description="The ragpress Generator that answers."
    )
    max_tokens: int | None = Field(default=None, description="New tokens at most (default: the generator's max_new_tokens).")
    temperature: float | None = Field(default=None, description="Sampling temperature (default: the generator's).")
    stop: list[str] | None = Field(default=None, description="Stop strings: the reply ends before the first.")

    @field_validator("generator")
    @classmethod
    def _check(cls, generator: Generator) -> Generator:
        if not generator.answers_conversations:
            raise TypeError(f"{type(generator).__name__} needs sources and cannot continue a free conversation; use TransformersGenerator.")
        return generator

    @property
    def _llm_type(self) -> str:
        return "ragpress"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"generator": self.generator.to_dict()}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        generator = self._for_call(kwargs)
        params = LangSmithParams(ls_provider="ragpress", ls_model_name=getattr(generator, "model", type(generator).__name__),
                                 ls_model_type="chat", ls_temperature=generator.temperature, ls_max_tokens=generator.max_new_tokens)
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        generator = self._for_call(kwargs)
        answer = generator.chat(to_chat(messages))
        text = "".join(until_stop([answer.text], stop or self.stop))
        usage = UsageMetadata(input_tokens=answer.prompt_tokens, output_tokens=answer.completion_tokens,
                              total_tokens=answer.prompt_tokens + answer.completion_tokens)
        message = AIMessage(content=text, usage_metadata=usage, response_metadata={"model_name": answer.model or _name(generator)})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        generator = self._for_call(kwargs)
        chat = to_chat(messages)
        text = ""
        for piece in until_stop(generator.stream_chat(chat), stop or self.stop):
            text += piece
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="", usage_metadata=stream_usage(generator, chat, text), chunk_position="last",
            response_metadata={"model_name": _name(generator)},
        ))

    def _for_call(self, kwargs: dict[str, Any]) -> Generator:
        """The generator with this model's settings and the call's ``model`` override applied."""
        changes = {"max_new_tokens": self.max_tokens, "temperature": self.temperature, "model": kwargs.get("model")}
        changes = {k: v for k, v in changes.items() if v is not None}
        if "model" in changes and "model" not in {f.name for f in dataclasses.fields(self.generator)}:
            raise TypeError(f"{type(self.generator).__name__} has no model setting to override; leave model= out.")
        return dataclasses.replace(self.generator, **changes) if changes else self.generator


def to_chat(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as ``{"role", "content"}`` dicts for a chat template."""
    out = []
    for message in messages:
        role = message.role if isinstance(message, ChatMessage) else ROLES.get(message.type)
        if role is None:
            raise ValueError(f"RagpressChatModel takes system, human, AI and chat messages, got a {message.type!r} message "
                             "(ragpress generators do not call tools).")
        out.append({"role": role, "content": message.text})
    return out


def until_stop(pieces: Iterator[str] | list[str], stop: list[str] | None) -> Iterator[str]:
    """The text of ``pieces`` up to (not including) the first stop string, yielded as it comes; the
    last ``len(longest stop) - 1`` characters are held back until they cannot start a stop string."""
    if not stop:
        yield from pieces
        return
    held, keep = "", max(map(len, stop)) - 1
    for piece in pieces:
        held += piece
        cut = min((at for at in (held.find(s) for s in stop) if at >= 0), default=-1)
        if cut >= 0:
            yield held[:cut]
            return
        if len(held) > keep:
            yield held[: len(held) - keep]
            held = held[len(held) - keep :]
    yield held


def stream_usage(generator: Generator, chat: list[dict[str, str]], text: str) -> UsageMetadata | None:
    """Token counts of a streamed reply, read with the tokenizer of the generator's ``model`` the way
    :meth:`~ragpress.core.lm.CausalLM.chat_ids` reads a prompt; None for an API model, whose
    tokenizer is not here."""
    if isinstance(generator, OpenAICompatibleGenerator) or not isinstance(getattr(generator, "model", None), str):
        return None
    tokenizer = load_tokenizer(generator.model)
    prompt, special = render_chat(tokenizer, chat)
    prompt_tokens = len(encode_prompt(tokenizer, prompt, content_spans(prompt, chat), special)[0])
    output_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return UsageMetadata(input_tokens=prompt_tokens, output_tokens=output_tokens, total_tokens=prompt_tokens + output_tokens)


def _name(generator: Generator) -> str:
    return str(getattr(generator, "model", type(generator).__name__))
