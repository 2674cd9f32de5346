"""Any ragpress chunker as a LlamaIndex node parser."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from llama_index.core.node_parser.interface import NodeParser
from llama_index.core.schema import BaseNode, MetadataMode, NodeRelationship
from pydantic import Field, InstanceOf

from ragpress.chunkers.base import Chunker
from ragpress.core.types import Document
from ragpress.integrations.llama_index.nodes import chunk_to_node
from ragpress.integrations.llama_index.serialize import AsDict


class ChunkerNodeParser(NodeParser):
    """Any ragpress chunker as a LlamaIndex node parser. Each node is an exact span of its
    document (``start_char_idx``/``end_char_idx``, ``ref_doc_id``) and carries the document's
    metadata as LlamaIndex's own parsers do (not with ``include_metadata=False``); the chunker's own
    metadata goes under hidden ``ragpress_`` keys. As with ragpress chunkers, a blank document gives
    no nodes; ``id_func`` is not used (node ids are spans: ``"{doc_id}:{start}-{end}"``)."""

    chunker: Annotated[InstanceOf[Chunker], AsDict] = Field(description="The ragpress chunker that cuts each document.")

    def __init__(self, chunker: Chunker, **kwargs: Any):
        super().__init__(chunker=chunker, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "RagpressChunkerNodeParser"

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        out: list[BaseNode] = []
        for node in nodes:
            text = node.get_content(metadata_mode=MetadataMode.NONE)
            document = Document(text, id=node.node_id, metadata=dict(node.metadata))
            for chunk in self.chunker.run([document]):
                piece = chunk_to_node(chunk, node, user=None if self.include_metadata else {})
                piece.relationships[NodeRelationship.SOURCE] = node.as_related_node_info()
                out.append(piece)
        return out

    def _postprocess_parsed_nodes(self, nodes: list[BaseNode], parent_doc_map: dict) -> list[BaseNode]:
        # LlamaIndex re-finds each node's text in its document to set offsets; that can land on an
        # earlier repeat of the same text, so keep the exact offsets the chunker gave.
        spans = [(node.start_char_idx, node.end_char_idx) for node in nodes]
        nodes = super()._postprocess_parsed_nodes(nodes, parent_doc_map)
        for node, (start, end) in zip(nodes, spans):
            node.start_char_idx, node.end_char_idx = start, end
        return nodes
