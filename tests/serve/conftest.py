"""A small corpus and a served pipeline for the HTTP tests: real chunker, BM25 and budget packer,
and a stub generator that echoes the query (so every answer shows which request it belongs to),
sleeps a little (so concurrent requests pile up as they would behind a model) and records the
size of each batch it is given."""

from __future__ import annotations

import dataclasses
import time
from typing import ClassVar

import pytest

from ragpress.chunkers.token_window import TokenWindowChunker
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.core.types import Answer, Context, Document
from ragpress.generators.base import Generator
from ragpress.pipelines.graph import Pipeline
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.serve import create_app, running

DOCS = [
    Document("The with statement wraps a block. It calls __exit__ when the block ends. Context managers define __enter__.", id="with"),
    Document("A for loop runs its else clause when the loop was not ended by break.", id="for"),
    Document("The global statement makes listed names refer to module globals.", id="global"),
]


@dataclasses.dataclass
class EchoGenerator(Generator):
    """Answers ``answer to: <query>``; fails on a query holding "boom"."""

    method: ClassVar[str] = "echo"
    seconds: float = 0.02

    def __post_init__(self):
        super().__post_init__()
        self.sizes: list[int] = []

    def generate_batch(self, contexts: list[Context]) -> list[Answer]:
        self.sizes.append(len(contexts))
        time.sleep(self.seconds)
        if any("boom" in c.query for c in contexts):
            raise ValueError("the echo generator does not answer boom")
        return [Answer(f"answer to: {c.query}", c, model="echo") for c in contexts]

    def generate(self, context: Context) -> Answer:
        return self.generate_batch([context])[0]


def pipeline(tiny_lm_path: str, generator: Generator | None = None) -> Pipeline:
    rag = Pipeline(chunker=TokenWindowChunker(size=12, overlap=0))
    rag.add("bm25", BM25Retriever(top_k=3)).add("pack", BudgetPacker(budget=24, tokenizer=tiny_lm_path), after="bm25")
    return rag.add("answer", generator, after="pack") if generator is not None else rag


@pytest.fixture(scope="module")
def echo(tiny_lm_path):
    """``(base URL, the stub generator, the pipeline)`` of a server running the echo pipeline over :data:`DOCS`."""
    generator = EchoGenerator()
    rag = pipeline(tiny_lm_path, generator)
    rag.index(DOCS)
    with running(create_app(rag, max_batch=8, max_wait_ms=20)) as url:
        yield url, generator, rag
