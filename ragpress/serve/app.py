"""The FastAPI app: ``POST /query``, ``POST /compress``, ``GET /health``, and FastAPI's own OpenAPI
docs at ``/docs`` (schema at ``/openapi.json``).

Concurrent /query requests are gathered into ``Pipeline.run_batch`` calls by a
:class:`~ragpress.serve.batcher.MicroBatcher`; /compress runs the pipeline's compressor stage on
the same worker thread, between batches. Every request is untrusted: bodies over
:data:`~ragpress.serve.schema.MAX_BODY_BYTES` are refused with 413 while they arrive, fields are
checked by :mod:`ragpress.serve.schema`, and a validation error names the field without echoing
what was sent.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ragpress.pipelines.graph import Pipeline
from ragpress.serve.batcher import Busy, MicroBatcher
from ragpress.serve.convert import check_servable, compress, compressor, query_response, unindexed
from ragpress.serve.schema import (
    MAX_BODY_BYTES,
    MAX_TOTAL_CHARS,
    CompressRequest,
    CompressResponse,
    Health,
    QueryRequest,
    QueryResponse,
    error,
)

log = logging.getLogger("ragpress.serve")


def create_app(pipeline: Pipeline, max_batch: int = 8, max_wait_ms: float = 10.0, max_queue: int = 1024) -> FastAPI:
    """An app serving ``pipeline`` (indexed already: see :meth:`Pipeline.index`). Up to ``max_batch``
    concurrent /query requests run in one ``run_batch`` call, gathered for at most ``max_wait_ms``
    after the first; beyond ``max_queue`` waiting requests the server answers 503."""
    check_servable(pipeline)
    batcher = MicroBatcher(pipeline.run_batch, max_batch, max_wait_ms, max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="ragpress", summary="A ragpress pipeline over HTTP.", lifespan=lifespan)
    app.state.pipeline, app.state.batcher = pipeline, batcher
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.get("/health")
    async def health() -> Health:
        return Health(status="ok", stages=[f"{n.name}: {type(n.stage).__name__}" for n in pipeline.nodes.values()],
                      documents=len(pipeline.documents), requests=batcher.requests, batches=batcher.batches)

    @app.post("/query", responses=error(503, "The pipeline has no index, or too many requests are waiting.")
              | error(500, "The pipeline failed on this query."))
    async def query(request: QueryRequest) -> QueryResponse:
        """Run the pipeline on the query: the answer (when it ends in a generator), the sources with
        their offsets, and each stage's share of the time of the batch it ran in."""
        missing = unindexed(pipeline)
        if missing:
            raise HTTPException(503, f"Retriever stage(s) {missing} have no index: start the server with documents "
                                     "(ragpress serve PIPELINE.yaml --index DOCS.jsonl).")
        try:
            served = await batcher.submit(request.query)
        except Busy as busy:
            raise HTTPException(503, str(busy)) from busy
        except Exception as failure:
            raise failed("query", failure) from failure
        return query_response(served.result, served)

    @app.post("/compress", responses=error(413, f"The passages hold more than {MAX_TOTAL_CHARS:,} characters in all.")
              | error(501, "The pipeline has no compressor stage that keeps text."))
    async def compress_passages(request: CompressRequest) -> CompressResponse:
        """Run the pipeline's compressor stage on the passages (each a whole chunk): the pieces it
        keeps, with offsets into their passage, and the tokens before and after."""
        total = sum(len(text) for text in request.texts())
        if total > MAX_TOTAL_CHARS:
            raise HTTPException(413, f"The passages hold {total:,} characters; at most {MAX_TOTAL_CHARS:,} are taken in one request: "
                                     "split them over several requests.")
        name, stage = compressor(pipeline, request.stage)
        try:
            return await batcher.in_worker(compress, name, stage, request)
        except Exception as failure:
            raise failed(f"compressor stage {name!r} ({type(stage).__name__})", failure) from failure

    return app


def failed(what: str, failure: Exception) -> HTTPException:
    log.error("ragpress serve: %s failed", what, exc_info=failure)
    return HTTPException(500, f"The {what} failed: {type(failure).__name__}: {failure}")


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field and why, without echoing the input (it may be large, or not even UTF-8)."""
    problems = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": problems}, status_code=422)


class BodyLimit:
    """ASGI middleware refusing a request body over ``max_bytes`` with 413: at once when its
    Content-Length says so, else while it arrives, before it is all in memory."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await JSONResponse({"detail": self.message(declared.decode("latin-1"))}, 413)(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # FastAPI turns this into the 413 response
                raise HTTPException(413, self.message(f"more than {self.max_bytes:,}"))
            return message

        await self.app(scope, counted, send)

    def message(self, size: str) -> str:
        return f"The request body has {size} bytes; this server takes at most {self.max_bytes:,}."
