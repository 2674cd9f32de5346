"""Any ragpress retriever, or a Pipeline that ends in one, as a LangChain retriever."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from ragpress.core.stage import check_query
from ragpress.core.types import Chunk
from ragpress.integrations._common import check_retrieval_stage, retrieve
from ragpress.integrations.langchain.convert import chunk_to_document, document_to_chunk, pieces_to_documents
from ragpress.pipelines.graph import Pipeline
from ragpress.retrievers.base import Retriever


class RagpressRetriever(BaseRetriever):
    """Any ragpress retriever, or a Pipeline that ends in one, as a LangChain retriever.

    Pass ``documents`` to index a retriever on them; it then returns those same documents, with
    ragpress's keys (score, method) added to their metadata. A Pipeline returns its pieces with the
    metadata of the documents it indexed (``title``, ``source``...) and ``start_index``, as
    LangChain's splitters do. ``k`` (in the constructor or per call: ``invoke(query, k=3)``) is how
    many documents to return; a retriever searches for that many, a Pipeline's output is cut to it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: Any = Field(description="A ragpress Retriever, or a Pipeline ending in one.")
    documents: list[LCDocument] | None = Field(default=None, description="Documents to index the retriever on.")
    k: int | None = Field(default=None, description="Documents to return (default: the retriever's top_k).")
    _chunks: list[Chunk] = PrivateAttr(default_factory=list)

    def __init__(self, retriever: Retriever | Pipeline, documents: Sequence[LCDocument] | None = None, **kwargs: Any):
        super().__init__(retriever=retriever, documents=None if documents is None else list(documents), **kwargs)

    @model_validator(mode="after")
    def _index(self) -> RagpressRetriever:
        check_retrieval_stage(self.retriever)
        check_k(self.k)
        if self.documents is not None:
            if not isinstance(self.retriever, Retriever):
                raise TypeError("Only a single Retriever can be indexed on documents; index a Pipeline with pipeline.index(documents).")
            self._chunks = [document_to_chunk(d) for d in self.documents]
            self.retriever.index(self._chunks)
        return self

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None) -> list[LCDocument]:
        k = check_k(self.k if k is None else k)
        if isinstance(self.retriever, Pipeline):
            return [chunk_to_document(c, self._source_metadata(c), start_index=True) for c in retrieve(self.retriever, query)[:k]]
        if k is None or not self.retriever.indexed:  # without an index, the retriever's own error says what to do
            chunks = retrieve(self.retriever, query)
        else:
            chunks = self.retriever.tag(self.retriever.search_batch([check_query(query)], k)[0])
        if self.documents is None:
            return [chunk_to_document(c) for c in chunks]
        return pieces_to_documents(chunks, self.documents, self._chunks)

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None) -> list[LCDocument]:
        """The search in a worker thread, so that concurrent queries overlap."""
        return await asyncio.to_thread(self._get_relevant_documents, query, run_manager=run_manager.get_sync(), k=k)

    def _source_metadata(self, chunk: Chunk) -> dict[str, Any]:
        source = self.retriever.documents.get(chunk.doc_id)
        return dict(source.metadata) if source is not None else {}


def check_k(k: int | None) -> int | None:
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise ValueError(f"k (documents to return) must be a positive int, got {k!r}.")
    return k
