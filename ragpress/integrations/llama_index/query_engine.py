"""A whole ragpress Pipeline as a LlamaIndex query engine."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import RESPONSE_TYPE, AsyncStreamingResponse, Response, StreamingResponse
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle

from ragpress.core.types import Answer, Chunk, Context
from ragpress.integrations._common import in_thread
from ragpress.integrations.llama_index.nodes import chunk_to_node, document_node
from ragpress.pipelines.graph import Pipeline


class RagpressQueryEngine(BaseQueryEngine):
    """A ragpress Pipeline that ends in a generator, as a LlamaIndex query engine: ``query`` gives a
    ``Response`` with the answer's text and ``source_nodes``, the source spans the answer read, as
    nodes with exact offsets into their documents and those documents' metadata; ``metadata`` holds
    the token counts and the pipeline's per-stage trace. With ``streaming=True`` it gives a
    ``StreamingResponse`` (``AsyncStreamingResponse`` from ``aquery``) whose sources are those the
    generator was given. ``aquery`` runs the pipeline in a worker thread, so concurrent queries overlap."""

    def __init__(self, pipeline: Pipeline, streaming: bool = False, callback_manager: CallbackManager | None = None):
        if not isinstance(pipeline, Pipeline) or pipeline.output_node.ports.output is not Answer:
            given = type(pipeline).__name__ if not isinstance(pipeline, Pipeline) else f"a Pipeline ending in {pipeline.output_node.name!r}"
            raise TypeError(
                f"RagpressQueryEngine needs a ragpress Pipeline that ends in a generator, got {given}; "
                "wrap a pipeline that ends in a retriever with RagpressRetriever instead."
            )
        super().__init__(callback_manager)
        self.pipeline, self.streaming = pipeline, streaming

    def _source_nodes(self, pieces: Sequence[Chunk]) -> list[NodeWithScore]:
        documents = self.pipeline.documents
        return [NodeWithScore(node=chunk_to_node(p, document_node(documents.get(p.doc_id))), score=p.score) for p in pieces]

    def _start_stream(self, query: str):
        inputs, tokens = self.pipeline.start_stream(query)
        context = next((i for i in inputs if isinstance(i, Context)), Context(query))
        return tokens, self._source_nodes(context.pieces)

    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        if self.streaming:
            tokens, sources = self._start_stream(query_bundle.query_str)
            return StreamingResponse(response_gen=tokens, source_nodes=sources)
        result = self.pipeline.run(query_bundle.query_str)
        answer: Answer = result.output
        metadata: dict[str, Any] = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
                                    "trace": result.table()}
        return Response(response=answer.text, source_nodes=self._source_nodes(answer.sources), metadata=metadata)

    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        if not self.streaming:
            return await asyncio.to_thread(self._query, query_bundle)
        tokens, sources = await asyncio.to_thread(self._start_stream, query_bundle.query_str)
        return AsyncStreamingResponse(response_gen=in_thread(tokens), source_nodes=sources)

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}
