"""What the LlamaIndex and LangChain adapters share, importing neither library: which ragpress
stages they can wrap, running those stages on chunks, where each returned piece came from, and the
bookkeeping fields a chunk carries in a foreign item's metadata."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ragpress.core.stage import Stage
from ragpress.core.types import Chunk, Context
from ragpress.pipelines.graph import Pipeline, Ports

# Everything ragpress writes into a foreign item's metadata goes under keys that start with this,
# so it never overwrites the user's keys (``doc_id``, ``start_index``, ``score``...) and adapters can
# keep all of it away from embedders and LLM prompts by the prefix alone.
PREFIX = "ragpress_"
SPAN_KEYS = (PREFIX + "doc_id", PREFIX + "start", PREFIX + "end")


def span_id(chunk: Chunk) -> str:
    """A stable id for a span, so the same span gets the same id wherever it is converted."""
    return f"{chunk.doc_id}:{chunk.start}-{chunk.end}"


def user_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A foreign item's metadata without ragpress's own keys."""
    return {k: v for k, v in metadata.items() if not k.startswith(PREFIX)}


def own_metadata(chunk: Chunk, user: Mapping[str, Any], span: bool = False) -> dict[str, Any]:
    """What ragpress adds to a foreign item's metadata, every key under :data:`PREFIX`: the chunk's
    metadata that ``user`` (the metadata the item keeps as its own) does not already hold, which is
    stage bookkeeping such as ``method``, ``chunk_index`` or ``rerank_score``; its ``score`` and
    ``token_count``; its sub-spans as a JSON string under ``ragpress_children`` (vector stores want flat
    metadata); and with ``span``, its ``doc_id``, ``start`` and ``end`` (for libraries whose items have
    no offsets of their own)."""
    own = {PREFIX + k: v for k, v in chunk.metadata.items() if k not in user or user[k] != v}
    if span:
        own |= dict(zip(SPAN_KEYS, (chunk.doc_id, chunk.start, chunk.end)))
    if chunk.score is not None:
        own[PREFIX + "score"] = chunk.score
    if chunk.token_count is not None:
        own[PREFIX + "token_count"] = chunk.token_count
    if chunk.children:
        own[PREFIX + "children"] = json.dumps([child.to_dict() for child in chunk.children])
    return own


def read_metadata(metadata: Mapping[str, Any]) -> tuple[tuple[Any, Any, Any], dict[str, Any], dict[str, Any]]:
    """The inverse of :func:`own_metadata`: ``(span, fields, chunk_metadata)``, where ``span`` is
    ``(doc_id, start, end)`` (``None`` where absent), ``fields`` the Chunk fields ``score``,
    ``token_count`` and ``children``, and ``chunk_metadata`` the user's keys with ragpress's other
    keys back under their own names."""
    span = tuple(metadata.get(key) for key in SPAN_KEYS)
    fields: dict[str, Any] = {}
    if metadata.get(PREFIX + "score") is not None:
        fields["score"] = float(metadata[PREFIX + "score"])
    if metadata.get(PREFIX + "token_count") is not None:
        fields["token_count"] = int(metadata[PREFIX + "token_count"])
    if metadata.get(PREFIX + "children"):
        fields["children"] = tuple(Chunk.from_dict(c) for c in json.loads(metadata[PREFIX + "children"]))
    taken = {*SPAN_KEYS, *(PREFIX + f for f in ("score", "token_count", "children"))}
    stage = {k.removeprefix(PREFIX): v for k, v in metadata.items() if k.startswith(PREFIX) and k not in taken}
    return span, fields, user_metadata(metadata) | stage


def locate(text: Any, doc_id: str | None, start: int | None, end: int | None, own_id: str, what: str) -> tuple[str, int, int]:
    """The ``(doc_id, start, end)`` of a foreign item's text. An item that does not say which
    document it comes from, or where in it, is taken as a whole document of its own named
    ``own_id`` (offsets ``0:len(text)``)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"{what} has no text ({text!r}); ragpress stages work on text: "
            "give it text or filter it out before this stage."
        )
    if doc_id is None or start is None:
        return own_id, 0, len(text)
    end = start + len(text) if end is None else end
    if end - start != len(text):
        raise ValueError(
            f"{what} says it spans {start}:{end} of {doc_id!r} ({end - start} characters) but its text has "
            f"{len(text)}; fix its offsets, or remove them to treat it as a whole document of its own."
        )
    return doc_id, start, end


def check_retrieval_stage(stage: Any) -> None:
    """Accept a stage (or a Pipeline) that answers a query with a ranked ``list[Chunk]``."""
    ports = stage.output_node.ports if isinstance(stage, Pipeline) else Ports.of(stage) if isinstance(stage, Stage) else None
    if ports is None or ports.output != list[Chunk] or (not isinstance(stage, Pipeline) and (ports.inputs or not ports.wants_query)):
        raise TypeError(
            f"Expected a ragpress Retriever (query -> list[Chunk]) or a Pipeline ending in one, got {type(stage).__name__}"
            + (f" giving {ports.output}" if ports else "")
            + "; wrap compressors and rerankers as postprocessors/document compressors instead."
        )


def check_chunk_stage(stage: Any) -> None:
    """Accept a stage that takes ``query, list[Chunk]`` and gives ``list[Chunk]`` or a ``Context``:
    every Reranker and Compressor, and any new method built on their bases."""
    ports = Ports.of(stage) if isinstance(stage, Stage) else None
    if ports is None or not ports.wants_query or ports.inputs != (list[Chunk],) or ports.output not in (list[Chunk], Context):
        raise TypeError(
            f"Expected a ragpress Compressor or Reranker (query, list[Chunk] -> Context or list[Chunk]), "
            f"got {type(stage).__name__}; wrap retrievers as retrievers instead."
        )


def retrieve(stage: Any, query: str) -> list[Chunk]:
    return stage.run(query).output if isinstance(stage, Pipeline) else stage.run(query)


def postprocess(stage: Stage, query: str, chunks: list[Chunk]) -> list[Chunk]:
    """Run a compressor or reranker and return its pieces in the order it gives them."""
    output = stage.run(query, chunks)
    if not isinstance(output, Context):
        return output
    if output.embeddings is not None and not output.pieces:
        raise TypeError(
            f"{type(stage).__name__} returns soft embeddings, not text pieces, so it cannot hand text back to "
            "another library; use it inside a ragpress Pipeline in front of a ragpress generator."
        )
    return list(output.pieces)


def trace_back(originals: Sequence[Chunk], pieces: Sequence[Chunk]) -> list[int | None]:
    """For each piece, the index of the original with the same span, else of the first original
    that contains it (same document, offsets and text), else None."""
    exact = {(c.doc_id, c.start, c.end): i for i, c in reversed(list(enumerate(originals)))}
    found: list[int | None] = []
    for piece in pieces:
        index = exact.get((piece.doc_id, piece.start, piece.end))
        if index is None:
            index = next(
                (i for i, c in enumerate(originals) if c.doc_id == piece.doc_id and c.start <= piece.start and piece.end <= c.end
                 and c.text[piece.start - c.start : piece.end - c.start] == piece.text),
                None,
            )
        found.append(index)
    return found


T = TypeVar("T")


async def in_thread(items: Iterator[T]) -> AsyncIterator[T]:
    """Yield what the blocking iterator ``items`` yields, each step in a worker thread, so the event
    loop runs other work (other queries) while a model generates."""
    done = object()
    while (item := await asyncio.to_thread(next, items, done)) is not done:
        yield item
