"""A whole ragpress Pipeline as a LangChain Runnable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.documents import Document as LCDocument
from langchain_core.runnables import Runnable, RunnableConfig

from ragpress.core.types import Answer, Chunk, Context
from ragpress.integrations._common import in_thread
from ragpress.integrations.langchain.convert import chunk_to_document
from ragpress.pipelines.graph import Pipeline
from ragpress.pipelines.trace import Result


class RagpressRunnable(Runnable[str, Any]):
    """A ragpress Pipeline as a LangChain ``Runnable`` over a query string.

    ``invoke`` gives the final stage's output in LangChain's terms: the answer text for a pipeline
    that ends in a generator (so it equals the concatenation of what ``stream`` yields), else the
    pieces as ``Document`` objects with their source document's metadata and ``start_index``; with
    ``return_result=True`` it gives the ragpress ``Result`` (output, every stage's output, trace).
    ``batch`` runs the queries through :meth:`Pipeline.run_batch`, so batched stages get them in one
    call; ``stream`` yields the generator's text as it is generated. The async forms run the same
    work in worker threads, so concurrent calls overlap and ``astream`` yields piece by piece."""

    def __init__(self, pipeline: Pipeline, return_result: bool = False):
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"RagpressRunnable wraps a ragpress Pipeline, got {type(pipeline).__name__}.")
        _ = pipeline.output_node  # a pipeline without exactly one final stage fails here, not at the first query
        self.pipeline = pipeline
        self.return_result = return_result

    @property
    def InputType(self) -> type:  # noqa: N802 - LangChain's name
        return str

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        if self.return_result:
            return Result
        return str if self._answers else list[LCDocument]

    @property
    def _answers(self) -> bool:
        return self.pipeline.output_node.ports.output is Answer

    def invoke(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(lambda query: self._convert(self.pipeline.run(query)), input, config, run_type="chain")

    async def ainvoke(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.invoke, input, config, **kwargs)

    def batch(self, inputs: list[str], config: RunnableConfig | list[RunnableConfig] | None = None, *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        if return_exceptions:  # one failing query must not fail the others: run them one by one
            return super().batch(inputs, config, return_exceptions=True, **kwargs)
        run = lambda queries: [self._convert(r) for r in self.pipeline.run_batch(queries)]  # noqa: E731
        return self._batch_with_config(run, list(inputs), config, run_type="chain")

    async def abatch(self, inputs: list[str], config: RunnableConfig | list[RunnableConfig] | None = None, *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        return await asyncio.to_thread(self.batch, inputs, config, return_exceptions=return_exceptions, **kwargs)

    def stream(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        if not self._answers:
            yield self.invoke(input, config)
            return
        pieces = lambda queries: (piece for query in queries for piece in self.pipeline.stream(query))  # noqa: E731
        yield from self._transform_stream_with_config(iter([input]), pieces, config, run_type="chain")

    async def astream(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        if not self._answers:
            yield await self.ainvoke(input, config)
            return

        async def pieces(queries: AsyncIterator[str]) -> AsyncIterator[str]:
            async for query in queries:
                # stream() runs the stages before the generator at once: start it in a thread too
                async for piece in in_thread(await asyncio.to_thread(self.pipeline.stream, query)):
                    yield piece

        async for piece in self._atransform_stream_with_config(_one(input), pieces, config, run_type="chain"):
            yield piece

    def _convert(self, result: Result) -> Any:
        output = result.output
        if self.return_result:
            return result
        if isinstance(output, Answer):
            return output.text
        pieces = output.pieces if isinstance(output, Context) else output
        if not (isinstance(pieces, (list, tuple)) and all(isinstance(p, Chunk) for p in pieces)):
            raise TypeError(f"The pipeline's final stage gives {type(output).__name__}; pass return_result=True to get it as is.")
        sources = self.pipeline.documents
        return [chunk_to_document(p, sources[p.doc_id].metadata if p.doc_id in sources else {}, start_index=True) for p in pieces]


async def _one(item: str) -> AsyncIterator[str]:
    yield item
