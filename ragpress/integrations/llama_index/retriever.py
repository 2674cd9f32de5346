"""Any ragpress retriever, or a Pipeline ending in one, as a LlamaIndex retriever."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle

from ragpress.core.types import Chunk
from ragpress.integrations._common import check_retrieval_stage, retrieve
from ragpress.integrations.llama_index.nodes import document_node, node_to_chunk, scored_nodes
from ragpress.pipelines.graph import Pipeline
from ragpress.retrievers.base import Retriever


class RagpressRetriever(BaseRetriever):
    """Any ragpress retriever, or a Pipeline that ends in one, as a LlamaIndex retriever.

    Pass ``nodes`` to index the retriever on them; it then returns those same node objects (with
    their relationships and embeddings) rather than new ones. A Pipeline's hits come back as nodes
    of the documents it indexed, with their metadata (``title``, ``source``...) as LlamaIndex's node
    parsers keep it. ``aretrieve`` runs the search in a worker thread, so concurrent queries overlap."""

    def __init__(self, retriever: Retriever | Pipeline, nodes: Sequence[BaseNode] | None = None, **kwargs: Any):
        check_retrieval_stage(retriever)
        super().__init__(**kwargs)
        self.retriever = retriever
        self._nodes: list[BaseNode] = []
        self._chunks: list[Chunk] = []
        if nodes is not None:
            if not isinstance(retriever, Retriever):
                raise TypeError("Only a single Retriever can be indexed on nodes; index a Pipeline with pipeline.index(documents).")
            self._nodes, self._chunks = list(nodes), [node_to_chunk(n) for n in nodes]
            retriever.index(self._chunks)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        chunks = retrieve(self.retriever, query_bundle.query_str)
        documents = self.retriever.documents if isinstance(self.retriever, Pipeline) else {}
        return scored_nodes(chunks, self._nodes, self._chunks, lambda chunk: document_node(documents.get(chunk.doc_id)))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)
