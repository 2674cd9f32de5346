"""Throughput and latency of ``ragpress serve`` on the bundled models, over loopback.

    python -m benchmarks.serve_load [--requests 64] [--answers 16] [--in-flight 1 4 16] [--max-new-tokens 8] [--threads N]

Starts ``ragpress serve`` as its own process (so the client does not share the server's interpreter)
on the demo's pipeline over the Python reference (79 topics), twice: retrieval and packing only (the
demo pipeline without its generator), then the whole pipeline with SmolLM2-135M answering in at most
``--max-new-tokens`` tokens. For each number of requests in flight it sends ``--requests`` queries
(``--answers`` to the pipeline that generates: on a CPU an answer takes seconds) and prints requests/s, latency p50 and p99
(nearest rank: of 64 or fewer, p99 is the slowest), the mean batch size (requests per ``run_batch`` call, from
/health), errors (any status but 200) and lost (no response, or a response for another query).
Queries are the demo's questions, numbered so each is distinct. ``--threads N`` starts the server
with ``OMP_NUM_THREADS=N`` (torch's threads): on a CPU shared with other jobs, fewer threads than
cores can be many times faster, since torch's threads wait on each other at every operation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import torch

from benchmarks._common import print_table
from ragpress.core.bundled import cache_dir
from ragpress.demo import MORE_QUESTIONS, demo_pipeline
from ragpress.pipelines.graph import Pipeline


@dataclasses.dataclass
class Load:
    """What one load run saw: each query's response (None when none came) and latency, and the wall time."""

    queries: list[str]
    responses: list[httpx.Response | None]
    latencies: list[float]
    seconds: float

    @property
    def errors(self) -> int:
        return sum(r is not None and r.status_code != 200 for r in self.responses)

    @property
    def lost(self) -> int:
        return sum(r is None or (r.status_code == 200 and r.json()["query"] != q) for q, r in zip(self.queries, self.responses))

    def latency(self, quantile: float) -> float:
        """Nearest-rank quantile of the latencies, in seconds."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


async def send(url: str, queries: list[str], in_flight: int, timeout: float = 600) -> Load:
    """POST each query to ``url``/query with at most ``in_flight`` requests open at once."""
    gate = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=httpx.Limits(max_connections=in_flight)) as client:
        async def one(query: str) -> tuple[httpx.Response | None, float]:
            async with gate:
                start = time.perf_counter()
                try:
                    response = await client.post("/query", json={"query": query})
                except httpx.HTTPError:
                    response = None
                return response, time.perf_counter() - start

        start = time.perf_counter()
        done = await asyncio.gather(*(one(q) for q in queries))
    return Load(queries, [r for r, _ in done], [s for _, s in done], time.perf_counter() - start)


@contextlib.contextmanager
def server(pipeline: Path, max_batch: int, max_wait_ms: float, log: Path, threads: int | None = None) -> Iterator[str]:
    """``ragpress serve`` on the Python reference (indexes cached with the demo's) on a free port; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "ragpress.cli", "serve", str(pipeline), "--python-reference", "--cache",
               str(cache_dir() / "demo-index"), "--port", str(port), "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms)]
    with log.open("w") as out:
        env = os.environ | {"HF_HUB_OFFLINE": "1"} | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ragpress serve did not start:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{url}/health")
                break
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--answers", type=int, default=16, help="requests sent to the pipeline that generates")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--threads", type=int, help="the server's torch threads (OMP_NUM_THREADS); default: torch's choice")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared: the load average was {os.getloadavg()[0]:.1f} "
          f"at the start), torch {torch.__version__}; server --max-batch {args.max_batch} --max-wait-ms {args.max_wait_ms}, "
          f"torch threads {args.threads or torch.get_num_threads()}")
    whole = demo_pipeline(max_new_tokens=args.max_new_tokens).to_dict()
    variants = {
        "retrieve + pack": ({**whole, "stages": whole["stages"][:-1]}, args.requests),  # the demo's stages before its generator
        f"+ SmolLM2 answer ({args.max_new_tokens} tokens)": (whole, args.answers),
    }
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (data, count) in variants.items():
            queries = [f"{MORE_QUESTIONS[i % len(MORE_QUESTIONS)]} ({i})" for i in range(count)]
            path = Path(folder) / "pipeline.yaml"
            Pipeline.from_dict(data).save(path)
            with server(path, args.max_batch, args.max_wait_ms, Path(folder) / "server.log", args.threads) as url:
                asyncio.run(send(url, queries[:2], 1))  # warm up: models load on first use
                for in_flight in args.in_flight:
                    before = httpx.get(f"{url}/health").json()
                    load = asyncio.run(send(url, queries, in_flight))
                    after = httpx.get(f"{url}/health").json()
                    batches = after["batches"] - before["batches"]
                    rows.append((name, in_flight, len(queries), f"{len(queries) / load.seconds:.2f}",
                                 f"{load.latency(0.5) * 1000:.0f}", f"{load.latency(0.99) * 1000:.0f}",
                                 f"{(after['requests'] - before['requests']) / max(batches, 1):.2f}", load.errors, load.lost))
                    print(f"{name}, {in_flight} in flight: done in {load.seconds:.1f} s", flush=True)
    print()
    print_table(("pipeline", "in flight", "requests", "req/s", "p50 ms", "p99 ms", "mean batch", "errors", "lost"), rows, "lrrrrrrrr")


if __name__ == "__main__":
    main()
