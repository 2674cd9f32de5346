"""A small corpus, and stand-ins for methods other engineers are adding (a compressor that cuts
pieces out of chunks, a reranker, a soft compressor): the adapters must take any stage built on
the ragpress bases."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ragpress.compressors.base import Compressor
from ragpress.core.types import Chunk, Context, Document
from ragpress.retrievers.base import Reranker

# Repeated sentences, so an adapter that re-finds text instead of keeping offsets would go wrong.
DOCS = [
    Document(
        "The with statement wraps a block. It calls __exit__ when the block ends. "
        "It calls __exit__ when the block ends. Context managers define __enter__ and __exit__.",
        id="with",
        metadata={"topic": "with"},
    ),
    Document("A for loop runs its else clause when the loop was not ended by break. Loops repeat.", id="for", metadata={"topic": "for"}),
    Document("The global statement makes listed names refer to module globals.", id="global", metadata={"topic": "global"}),
]


@dataclasses.dataclass
class FirstSentence(Compressor):
    """Keeps the first sentence of each chunk: pieces are sub-spans of their chunks."""

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        pieces = []
        for chunk in chunks:
            cut = chunk.text.find(".") + 1 or len(chunk.text)
            pieces.append(Chunk(chunk.doc_id, chunk.start, chunk.start + cut, chunk.text[:cut], metadata={"cut": True}))
        words = lambda items: sum(len(c.text.split()) for c in items)  # noqa: E731
        return Context(query, tuple(pieces), tokens_before=words(chunks), tokens_after=words(pieces))


@dataclasses.dataclass
class ShortestFirst(Reranker):
    def rerank(self, query: str, chunks: list[Chunk]) -> list[Chunk]:
        return sorted((c.with_score(1.0 / len(c.text)) for c in chunks), key=lambda c: -c.score)


@dataclasses.dataclass
class SoftCompressor(Compressor):
    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        return Context(query, embeddings=torch.zeros(2, 4))


@pytest.fixture(scope="session")
def docs() -> list[Document]:
    return DOCS


@pytest.fixture(scope="session")
def texts() -> dict[str, str]:
    return {d.id: d.text for d in DOCS}


@pytest.fixture()
def first_sentence() -> FirstSentence:
    return FirstSentence()


@pytest.fixture()
def shortest_first() -> ShortestFirst:
    return ShortestFirst()


@pytest.fixture()
def soft_compressor() -> SoftCompressor:
    return SoftCompressor()


@pytest.fixture(scope="session")
def tiny_provence_path(tmp_path_factory) -> str:
    """A Provence checkpoint on a 2-layer BERT with the MiniLM tokenizer, trained for 2 steps: its
    scores are arbitrary, but it prunes, reranks and writes ``chunk_index``/``rerank_score`` as Provence does."""
    from transformers import BertConfig, BertModel

    from ragpress.compressors.provence.train import train_provence
    from ragpress.models import load_tokenizer

    tokenizer = load_tokenizer("minilm-l6")
    torch.manual_seed(0)
    base = tmp_path_factory.mktemp("provence_base")
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    out = tmp_path_factory.mktemp("tiny_provence")
    rows = [{"query": "What does with call?", "passage": DOCS[0].text, "sentence_labels": [0, 1, 1, 0], "rerank_score": 1.0}]
    train_provence(rows, out, base=str(base), max_length=64, max_steps=2, batch_size=1)
    return str(out)
