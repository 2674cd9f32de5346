import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from ragpress.core import Chunk, Context, Document
from ragpress.generators.openai_compatible import OpenAICompatibleGenerator
from ragpress.generators.transformers_lm import TransformersGenerator

DOC = Document("The with statement calls __exit__ when the block ends.", id="with")
CONTEXT = Context(query="What does with call?", pieces=(Chunk.of(DOC, 0, len(DOC.text)),), tokens_before=12, tokens_after=12)


def test_prompt_numbers_the_sources_and_asks_the_question():
    messages = TransformersGenerator().messages(CONTEXT)
    assert messages[-1]["content"] == f"Sources:\n[1] {DOC.text}\n\nQuestion: What does with call?"
    with pytest.raises(TypeError, match="put a compressor before it"):
        TransformersGenerator().messages([CONTEXT.pieces[0]])


def test_transformers_generator_is_deterministic_and_streams_the_same_text(tiny_lm_path):
    generator = TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=6)
    answer = generator.run(CONTEXT)
    assert answer == generator.run(CONTEXT)
    assert answer.completion_tokens == 6 and answer.prompt_tokens > 20 and answer.sources == CONTEXT.pieces
    assert "".join(generator.stream(CONTEXT)).strip() == answer.text


def test_sampling_is_seeded(tiny_lm_path):
    sample = lambda seed: TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=8, temperature=1.0, seed=seed).run(CONTEXT).text  # noqa: E731
    assert sample(1) == sample(1)
    assert len({sample(s) for s in range(4)}) > 1


class _Stub(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.requests.append((self.path, self.headers.get("Authorization"), body))
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"model exploded")
            return
        self.send_response(200)
        if body["stream"]:
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ("It calls ", "__exit__."):
                self.wfile.write(f"data: {json.dumps({'choices': [{'delta': {'content': piece}}]})}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        reply = {"model": body["model"], "choices": [{"message": {"content": "It calls __exit__."}}],
                 "usage": {"prompt_tokens": 40, "completion_tokens": 5}}
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(reply).encode())

    def log_message(self, *args):
        pass


@pytest.fixture()
def stub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_openai_compatible_generator_against_a_local_stub(stub_url, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "secret")
    generator = OpenAICompatibleGenerator(base_url=stub_url, model="m", api_key_env="STUB_KEY", max_new_tokens=7)
    answer = generator.run(CONTEXT)
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens, answer.model) == ("It calls __exit__.", 40, 5, "m")
    path, auth, body = _Stub.requests[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer secret"
    assert body["max_tokens"] == 7 and body["messages"] == generator.messages(CONTEXT)
    assert "".join(generator.stream(CONTEXT)) == "It calls __exit__."
    assert "secret" not in json.dumps(generator.to_dict())


def test_openai_compatible_generator_names_server_errors(stub_url):
    with pytest.raises(RuntimeError, match="HTTP 500: model exploded"):
        OpenAICompatibleGenerator(base_url=stub_url, model="broken").run(CONTEXT)
    with pytest.raises(RuntimeError, match="is the server running"):
        OpenAICompatibleGenerator(base_url="http://127.0.0.1:9/v1", timeout=2).run(CONTEXT)


def test_run_batch_gives_the_answers_of_run(tiny_lm_path):
    generator = TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=6, batch_size=2)
    contexts = [CONTEXT, Context(query="Why?"), Context(query="What is a longer question about the with statement?", pieces=CONTEXT.pieces)]
    batched = generator.run_batch(contexts)
    assert batched == [generator.run(c) for c in contexts]
    assert generator.run_batch([]) == []


CHAT = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What does with call?"}]


def test_chat_sends_the_messages_as_they_are_through_the_chat_template(tiny_lm_path, tiny_lm):
    generator = TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=5)
    answer = generator.chat(CHAT)
    assert answer.prompt_tokens == tiny_lm.chat_ids(CHAT).shape[1] and answer.completion_tokens == 5
    assert answer.context.query == CHAT[-1]["content"] and answer.sources == () and answer.metadata["method"] == "transformers"
    assert "".join(generator.stream_chat(CHAT)).strip() == answer.text
    with pytest.raises(TypeError, match="Message 1 must be a dict"):
        generator.chat([CHAT[0], "hi"])
    with pytest.raises(TypeError, match="non-empty list"):
        generator.chat("hi")
    class SourcesOnly(TransformersGenerator):
        answers_conversations = False

    with pytest.raises(NotImplementedError, match="answers only a Context"):
        SourcesOnly(model=tiny_lm_path).chat(CHAT)


def test_openai_compatible_chat_posts_the_messages_unchanged(stub_url):
    generator = OpenAICompatibleGenerator(base_url=stub_url, model="m")
    answer = generator.chat(CHAT)
    assert (answer.text, answer.prompt_tokens, answer.context.query) == ("It calls __exit__.", 40, CHAT[-1]["content"])
    assert _Stub.requests[-1][2]["messages"] == CHAT
    assert "".join(generator.stream_chat(CHAT)) == "It calls __exit__." and _Stub.requests[-1][2]["messages"] == CHAT


def test_dtype_sets_the_precision_the_model_runs_in(tiny_lm_path):
    from ragpress.models import load_causal_lm, loaded

    generator = TransformersGenerator(model=tiny_lm_path, device="cpu", dtype="float64", max_new_tokens=3)
    assert generator.run(CONTEXT).completion_tokens == 3 and generator.run_batch([CONTEXT])[0] == generator.run(CONTEXT)
    assert ("causal_lm", tiny_lm_path, "cpu", "torch.float64") in loaded()
    assert load_causal_lm(tiny_lm_path, "cpu", "float64").model.dtype == torch.float64
    assert TransformersGenerator.from_dict(generator.to_dict()).dtype == "float64"
