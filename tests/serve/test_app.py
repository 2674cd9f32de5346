"""The server over real HTTP: a uvicorn server started by the test on a free loopback port, called
with httpx."""

import asyncio

import httpx
import pytest

from benchmarks.serve_load import send
from ragpress.pipelines.graph import Pipeline
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.serve import create_app, running
from ragpress.serve.schema import MAX_BODY_BYTES, MAX_PASSAGES, MAX_QUERY_CHARS, MAX_TOTAL_CHARS
from tests.serve.conftest import DOCS, pipeline

TEXTS = {d.id: d.text for d in DOCS}


def test_query_answers_with_sources_at_their_offsets_and_a_trace(echo):
    url, _, _ = echo
    response = httpx.post(f"{url}/query", json={"query": "What does the with statement call?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "answer to: What does the with statement call?"
    assert body["sources"] and all(TEXTS[s["doc_id"]][s["start"] : s["end"]] == s["text"] for s in body["sources"])
    assert body["sources"][0]["doc_id"] == "with"
    assert body["tokens_after"] <= 24 and body["tokens_before"] >= body["tokens_after"]
    assert [t["name"] for t in body["trace"]] == ["bm25", "pack", "answer"]
    assert all(t["ms"] >= 0 for t in body["trace"]) and body["trace"][2]["stage"] == "EchoGenerator"
    assert body["batch"]["size"] >= 1 and body["batch"]["queued_ms"] >= 0


def test_compress_keeps_pieces_with_offsets_into_each_passage(echo):
    url, _, _ = echo
    long = "Filler words that say nothing at all about anything. " * 6
    passages = ["The global statement names module globals.", {"text": long, "id": "filler"}, {"text": "Loops repeat.", "id": "loops"}]
    response = httpx.post(f"{url}/compress", json={"query": "global statement", "passages": passages})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stage"] == "pack" and body["type"] == "BudgetPacker"
    texts = [passages[0], long, "Loops repeat."]
    assert [(p["passage"], p["id"]) for p in body["pieces"]] == [(0, "passage-0"), (2, "loops")]  # the long one overflows 24 tokens
    assert all(texts[p["passage"]][p["start"] : p["end"]] == p["text"] for p in body["pieces"])
    assert body["tokens_before"] > body["tokens_after"] > 0 and body["ratio"] == pytest.approx(body["tokens_before"] / body["tokens_after"])


def test_health_openapi_and_docs(echo):
    url, _, _ = echo
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["documents"] == 3
    assert health["stages"] == ["bm25: BM25Retriever", "pack: BudgetPacker", "answer: EchoGenerator"]
    schema = httpx.get(f"{url}/openapi.json").json()
    assert {"/query", "/compress", "/health"} <= set(schema["paths"])
    query = schema["components"]["schemas"]["QueryRequest"]["properties"]["query"]
    assert query["maxLength"] == MAX_QUERY_CHARS
    assert "413" in schema["paths"]["/compress"]["post"]["responses"]
    assert "swagger" in httpx.get(f"{url}/docs").text.lower()


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"query": "   "}, "query", "blank"),
    ({"query": "x" * (MAX_QUERY_CHARS + 1)}, "query", f"at most {MAX_QUERY_CHARS} characters"),
    ({"query": 42}, "query", "valid string"),
    ({"query": "q", "top_k": 3}, "top_k", "Extra inputs"),
    ({}, "query", "Field required"),
])
def test_bad_queries_are_refused_with_422_naming_the_field(echo, body, field, message):
    response = httpx.post(f"{echo[0]}/query", json=body)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"][-1] == field and message in problem["msg"] and "input" not in problem


@pytest.mark.parametrize(("passages", "message"), [
    (["p"] * (MAX_PASSAGES + 1), f"at most {MAX_PASSAGES} items"),
    ([], "at least 1 item"),
    ([{"text": "a", "id": "x"}, {"text": "b", "id": "x"}], "ids must be unique"),
    ([""], "at least 1 character"),
])
def test_bad_passages_are_refused_with_422(echo, passages, message):
    response = httpx.post(f"{echo[0]}/compress", json={"query": "q", "passages": passages})
    assert response.status_code == 422 and message in str(response.json()["detail"])


def test_a_lone_surrogate_is_refused_with_422_not_a_crash(echo):
    response = httpx.post(f"{echo[0]}/query", content=b'{"query": "a \\ud800 b"}', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "query"]


def test_too_much_text_is_refused_with_413(echo):
    url = echo[0]
    per = MAX_TOTAL_CHARS // 3 + 1
    response = httpx.post(f"{url}/compress", json={"query": "q", "passages": ["a" * per] * 3})
    assert response.status_code == 413 and f"at most {MAX_TOTAL_CHARS:,}" in response.json()["detail"]
    big = b'{"query": "' + b"a" * MAX_BODY_BYTES + b'"}'
    response = httpx.post(f"{url}/query", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "at most" in response.json()["detail"]
    chunked = (big[i : i + 65536] for i in range(0, len(big), 65536))  # no Content-Length: counted as it arrives
    response = httpx.post(f"{url}/query", content=chunked, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "at most" in response.json()["detail"]


def test_concurrent_queries_share_run_batch_calls_and_each_gets_its_own_answer(echo):
    url, generator, _ = echo
    before = len(generator.sizes)
    queries = [f"for loop else clause, request {i}" for i in range(16)]
    done = asyncio.run(send(url, queries, in_flight=16))
    assert all(r.status_code == 200 and r.json()["answer"] == f"answer to: {q}" for q, r in zip(queries, done.responses))
    sizes = generator.sizes[before:]
    assert sum(sizes) == 16 and len(sizes) < 16 and max(sizes) <= 8
    assert max(r.json()["batch"]["size"] for r in done.responses) > 1


def test_a_failing_query_gets_its_own_500_and_its_batch_mates_their_answers(echo):
    queries = ["global statement 1", "boom", "global statement 2"]
    first, boom, last = asyncio.run(send(echo[0], queries, in_flight=3)).responses
    assert [first.status_code, boom.status_code, last.status_code] == [200, 500, 200]
    assert "ValueError: the echo generator does not answer boom" in boom.json()["detail"]
    assert [first.json()["answer"], last.json()["answer"]] == ["answer to: global statement 1", "answer to: global statement 2"]


def test_load_on_loopback_loses_nothing(echo):
    """64 requests, 16 in flight: all 200, each answer its own query's, all counted by /health."""
    url = echo[0]
    before = httpx.get(f"{url}/health").json()
    queries = [f"what does the global statement do? ({i})" for i in range(64)]
    load = asyncio.run(send(url, queries, in_flight=16))
    after = httpx.get(f"{url}/health").json()
    assert [r.status_code for r in load.responses] == [200] * 64 and load.errors == load.lost == 0
    assert [r.json()["answer"] for r in load.responses] == [f"answer to: {q}" for q in queries]
    assert after["requests"] - before["requests"] == 64
    batches = after["batches"] - before["batches"]
    assert batches < 64
    print(f"64 requests, 16 in flight: {64 / load.seconds:.0f} req/s, p50 {load.latency(0.5) * 1000:.0f} ms, "
          f"p99 {load.latency(0.99) * 1000:.0f} ms, mean batch {64 / batches:.1f}")
    assert 0 < load.latency(0.5) <= load.latency(0.99) < 30


def test_a_pipeline_ending_in_a_retriever_gives_sources_and_no_compressor_to_run(tiny_lm_path):
    rag = Pipeline(chunker=pipeline(tiny_lm_path).chunker).add("bm25", BM25Retriever(top_k=2))
    with running(create_app(rag)) as url:
        assert httpx.post(f"{url}/query", json={"query": "global"}).status_code == 503  # no index yet
        assert "have no index" in httpx.post(f"{url}/query", json={"query": "global"}).json()["detail"]
        response = httpx.post(f"{url}/compress", json={"query": "q", "passages": ["p"]})
        assert response.status_code == 501 and "has none (its stages: bm25 (BM25Retriever))" in response.json()["detail"]
    rag.index(DOCS)
    with running(create_app(rag)) as url:
        body = httpx.post(f"{url}/query", json={"query": "global statement"}).json()
        assert body["answer"] is None and body["tokens_before"] is None
        assert body["sources"][0]["doc_id"] == "global" and body["sources"][0]["score"] > 0


def test_compress_names_the_stage_it_cannot_run(echo):
    response = httpx.post(f"{echo[0]}/compress", json={"query": "q", "passages": ["p"], "stage": "bm25"})
    assert response.status_code == 400 and "compressor stage of this pipeline (['pack'])" in response.json()["detail"]
