"""Between the pipeline's data and the server's JSON: a run's result as a /query response, and a
/compress request as chunks for the pipeline's compressor stage and its Context as kept pieces."""

from __future__ import annotations

from fastapi import HTTPException

from ragpress.compressors.base import Compressor, SoftCompressor
from ragpress.core.text import tokenizable
from ragpress.core.types import Answer, Chunk, Context, Document, check_provenance
from ragpress.pipelines.graph import Pipeline
from ragpress.pipelines.trace import Result
from ragpress.serve.batcher import Served
from ragpress.serve.schema import (
    Batch,
    CompressRequest,
    CompressResponse,
    KeptPiece,
    QueryResponse,
    Source,
    StageTiming,
)

OUTPUTS = (Answer, Context, list[Chunk])


def check_servable(pipeline: Pipeline) -> None:
    """Raise before serving unless the pipeline has one final stage giving an Answer, a Context or chunks."""
    output = pipeline.output_node.ports.output
    if output not in OUTPUTS:
        raise TypeError(f"/query returns an answer, a context or chunks, but the final stage {pipeline.output_node.name!r} "
                        f"gives {output}: end the pipeline in a generator, a compressor or a retriever.")


def unindexed(pipeline: Pipeline) -> list[str]:
    """Names of the retriever stages that have no index (so /query cannot run)."""
    return [n.name for n in pipeline.nodes.values() if hasattr(n.stage, "indexed") and not n.stage.indexed]


def query_response(result: Result, served: Served) -> QueryResponse:
    output = result.output
    context = output.context if isinstance(output, Answer) else output if isinstance(output, Context) else None
    pieces = context.pieces if context is not None else output
    return QueryResponse(
        query=result.query,
        answer=output.text if isinstance(output, Answer) else None,
        # lone surrogates as U+FFFD, one character for one: JSON is UTF-8, and the offsets hold
        sources=[Source(doc_id=tokenizable(p.doc_id), start=p.start, end=p.end, text=tokenizable(p.text), score=p.score) for p in pieces],
        tokens_before=context.tokens_before if context is not None else None,
        tokens_after=context.tokens_after if context is not None else None,
        trace=[StageTiming(name=t.name, stage=t.stage, ms=t.seconds * 1000, items_in=t.items_in, items_out=t.items_out,
                           tokens_in=t.tokens_in, tokens_out=t.tokens_out) for t in result.trace],
        batch=Batch(size=served.batch_size, queued_ms=served.queued_s * 1000),
    )


def compressor(pipeline: Pipeline, name: str | None) -> tuple[str, Compressor]:
    """The compressor stage /compress runs: the one named, or the pipeline's only one."""
    found = {n.name: n.stage for n in pipeline.nodes.values() if isinstance(n.stage, Compressor)}
    stages = ", ".join(f"{n.name} ({type(n.stage).__name__})" for n in pipeline.nodes.values())
    if name is not None and name not in found:
        raise HTTPException(400, f"'stage' must name a compressor stage of this pipeline ({sorted(found) or 'it has none'}), got {name!r}.")
    if not found:
        raise HTTPException(501, f"/compress runs the pipeline's compressor stage, and this pipeline has none (its stages: {stages}).")
    if name is None and len(found) > 1:
        raise HTTPException(400, f"This pipeline has {len(found)} compressor stages, {sorted(found)}: say which to run with 'stage'.")
    name = name or next(iter(found))
    if isinstance(found[name], SoftCompressor):
        raise HTTPException(501, f"/compress returns kept text, but stage {name!r} ({type(found[name]).__name__}) compresses "
                                 "to soft embeddings for its decoder, not text; serve a pipeline with an extractive compressor.")
    return name, found[name]


def compress(name: str, stage: Compressor, request: CompressRequest) -> CompressResponse:
    """Run ``stage`` on the passages as chunks, each a whole passage named by its id (runs in the worker thread)."""
    documents = [Document(text, id=i) for text, i in zip(request.texts(), request.ids())]
    chunks = [Chunk.of(d, 0, len(d.text)) for d in documents]
    context = stage.run(request.query, chunks)
    check_provenance(context.pieces, documents)  # offsets into the passages the client sent, or an error
    index = {d.id: i for i, d in enumerate(documents)}
    return CompressResponse(
        stage=name,
        type=type(stage).__name__,
        pieces=[KeptPiece(passage=index[p.doc_id], id=p.doc_id, start=p.start, end=p.end, text=p.text) for p in context.pieces],
        tokens_before=context.tokens_before,
        tokens_after=context.tokens_after,
        ratio=context.ratio,
    )
