"""Generation through an OpenAI-compatible ``/chat/completions`` endpoint (vLLM, TGI, llama.cpp
server, SGLang, OpenAI itself), with the standard library's HTTP client."""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, ClassVar

from ragpress.core.settings import guarded
from ragpress.core.types import Answer, Context
from ragpress.generators.base import Generator, chat_context, check_messages


@dataclasses.dataclass
class OpenAICompatibleGenerator(Generator):
    """``base_url`` is the API root, e.g. ``http://localhost:8000/v1``. The API key is read from the
    environment variable named by ``api_key_env`` (never stored in the settings), if set."""

    method: ClassVar[str] = "openai_compatible"
    base_url: str = guarded("http://localhost:8000/v1", "host")  # pipeline files may set neither (ragpress.core.settings)
    model: str = ""
    api_key_env: str = guarded("OPENAI_API_KEY", "secret")
    timeout: float = 60.0
    seed: int = 0

    def generate(self, context: Context) -> Answer:
        return self._reply(self.messages(context), context)

    def chat(self, messages: list[dict[str, str]]) -> Answer:
        return self.tag(self._reply(check_messages(messages), chat_context(messages)))

    def stream(self, context: Context) -> Iterator[str]:
        return self._stream(self.messages(context))

    def stream_chat(self, messages: list[dict[str, str]]) -> Iterator[str]:
        return self._stream(check_messages(messages))

    def _reply(self, messages: list[dict[str, str]], context: Context) -> Answer:
        with self._post(messages, stream=False) as response:
            body = json.load(response)
        try:
            text = body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as error:
            raise RuntimeError(f"{self.base_url} answered without choices[0].message.content: {str(body)[:300]}") from error
        usage = body.get("usage") or {}
        return Answer(
            text.strip(),
            context,
            body.get("model", self.model),
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        )

    def _stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        with self._post(messages, stream=True) as response:
            for raw in response:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                delta = (json.loads(data).get("choices") or [{}])[0].get("delta", {})
                if delta.get("content"):
                    yield delta["content"]

    def _post(self, messages: list[dict[str, str]], stream: bool) -> Any:
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "stream": stream,
        }
        headers = {"Content-Type": "application/json"}
        if key := os.environ.get(self.api_key_env):
            headers["Authorization"] = f"Bearer {key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        request = urllib.request.Request(url, json.dumps(payload).encode(), headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{url} answered HTTP {error.code}: {error.read()[:300].decode(errors='replace')}") from error
        except urllib.error.URLError as error:
            raise RuntimeError(f"Could not reach {url} ({error.reason}); is the server running and base_url right?") from error
