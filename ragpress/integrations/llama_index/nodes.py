"""Nodes and chunks, LlamaIndex documents and ragpress documents, converted both ways.

A node keeps its span in its own fields (``ref_doc_id``, ``start_char_idx``, ``end_char_idx``) and
its score in ``NodeWithScore.score``; what else ragpress knows (``token_count``, ``children``, stage
bookkeeping such as Provence's ``chunk_index``) goes into metadata under ``ragpress_`` keys
(:mod:`ragpress.integrations._common`), which every node ragpress hands LlamaIndex hides from
embedders and LLM prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core import Document as LlamaDocument
from llama_index.core.schema import BaseNode, MetadataMode, NodeRelationship, NodeWithScore, RelatedNodeInfo, TextNode

from ragpress.core.types import Chunk, Document
from ragpress.integrations._common import (
    PREFIX,
    locate,
    own_metadata,
    read_metadata,
    span_id,
    trace_back,
    user_metadata,
)

__all__ = ["chunk_to_node", "from_llama_index", "hide_own_keys", "node_to_chunk", "scored_nodes", "to_llama_index"]


def hidden(keys: Sequence[str], metadata: Mapping[str, Any]) -> list[str]:
    """``keys`` plus every ragpress key of ``metadata`` not already among them."""
    return list(keys) + [k for k in metadata if k.startswith(PREFIX) and k not in keys]


def hide_own_keys(node: BaseNode) -> BaseNode:
    """``node``, with every ragpress key of its metadata added to its excluded embed and LLM keys
    (in place: a no-op for a node without ragpress keys)."""
    node.excluded_embed_metadata_keys = hidden(node.excluded_embed_metadata_keys, node.metadata)
    node.excluded_llm_metadata_keys = hidden(node.excluded_llm_metadata_keys, node.metadata)
    return node


def node_metadata(chunk: Chunk, user: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata of a node for ``chunk`` whose own metadata is ``user``: the score lives in
    ``NodeWithScore.score`` and the span in the node's fields, so neither is repeated here."""
    own = own_metadata(chunk, user)
    own.pop(PREFIX + "score", None)
    return dict(user) | own


def chunk_to_node(chunk: Chunk, parent: BaseNode | None = None, user: Mapping[str, Any] | None = None) -> TextNode:
    """A ``TextNode`` for ``chunk``. ``user`` is the metadata the node keeps as its own: by default
    the metadata of ``parent`` (the node or document the chunk was cut from) less ragpress's keys,
    else, without a parent, the chunk's metadata. The chunk's other metadata (stage bookkeeping) goes
    under ``ragpress_`` keys. With ``parent``, the node also inherits its hidden keys and source
    document."""
    if user is None:
        user = dict(chunk.metadata) if parent is None else user_metadata(parent.metadata)
    metadata = node_metadata(chunk, user)
    source = RelatedNodeInfo(node_id=chunk.doc_id)
    embed, llm = [], []
    if parent is not None:
        embed, llm = parent.excluded_embed_metadata_keys, parent.excluded_llm_metadata_keys
        if parent.node_id == chunk.doc_id:  # cut from the document itself (or a node standing as one)
            source = parent.as_related_node_info()
        elif parent.ref_doc_id == chunk.doc_id:
            source = parent.source_node
    return TextNode(
        id_=span_id(chunk),
        text=chunk.text,
        start_char_idx=chunk.start,
        end_char_idx=chunk.end,
        metadata=metadata,
        excluded_embed_metadata_keys=hidden(embed, metadata),
        excluded_llm_metadata_keys=hidden(llm, metadata),
        relationships={NodeRelationship.SOURCE: source},
    )


def node_to_chunk(node: BaseNode | NodeWithScore) -> Chunk:
    """The ragpress chunk for a node: its text, its span of the document ``ref_doc_id`` names and
    its metadata, with ragpress's keys read back (and its score, for a ``NodeWithScore``). A node
    without ``ref_doc_id`` or offsets is taken as a whole document of its own, named by its node
    id; a node without text is an error."""
    score = None
    if isinstance(node, NodeWithScore):
        node, score = node.node, node.score
    if not isinstance(node, BaseNode):
        raise TypeError(f"Expected a LlamaIndex node, got {type(node).__name__}.")
    text = node.get_content(metadata_mode=MetadataMode.NONE)
    start, end = getattr(node, "start_char_idx", None), getattr(node, "end_char_idx", None)
    what = f"LlamaIndex {type(node).__name__} {node.node_id!r}"
    doc_id, start, end = locate(text, node.ref_doc_id, start, end, node.node_id, what)
    _, fields, metadata = read_metadata(node.metadata)
    fields["score"] = score if score is not None else fields.get("score")
    return Chunk(doc_id=doc_id, start=start, end=end, text=text, metadata=metadata, **fields)


def scored_nodes(pieces: Sequence[Chunk], originals: Sequence[NodeWithScore | BaseNode], chunks: Sequence[Chunk],
                 parent_of: Callable[[Chunk], BaseNode | None] = lambda chunk: None) -> list[NodeWithScore]:
    """Nodes for the pieces a stage returned, given the ``originals`` (nodes) it was given as
    ``chunks``: the original node itself where span and metadata are unchanged (with the new
    score; the stage's name stamp alone is no change); a copy of it with the stage's bookkeeping
    where only the metadata changed; else a new
    node for the piece that inherits from the node it was cut from, or from ``parent_of(piece)``
    (e.g. its document) for a piece that comes from none of them."""
    out = []
    for piece, index in zip(pieces, trace_back(chunks, pieces)):
        if index is None:
            out.append(NodeWithScore(node=chunk_to_node(piece, parent_of(piece)), score=piece.score))
            continue
        original = originals[index].node if isinstance(originals[index], NodeWithScore) else originals[index]
        score = piece.score if piece.score is not None else chunks[index].score
        if (chunks[index].start, chunks[index].end) != (piece.start, piece.end):
            out.append(NodeWithScore(node=chunk_to_node(piece, original), score=score))
            continue
        metadata = node_metadata(piece, user_metadata(original.metadata))
        if without_stamp(metadata) != without_stamp(original.metadata):
            original = original.model_copy(update={"metadata": metadata})
        out.append(NodeWithScore(node=hide_own_keys(original), score=score))
    return out


def without_stamp(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` without the name of the last stage that passed the item on (every stage stamps
    its own): a span a reranker only reordered is the same node, not a copy."""
    return {k: v for k, v in metadata.items() if k != PREFIX + "method"}


def document_node(document: Document | None) -> LlamaDocument | None:
    """The LlamaIndex document for a ragpress document (None for None): the parent of its pieces."""
    return None if document is None else to_llama_index([document])[0]


def to_llama_index(documents: Sequence[Document]) -> list[LlamaDocument]:
    """LlamaIndex documents for ragpress documents, with the same ids, text and metadata."""
    if isinstance(documents, Document) or not all(isinstance(d, Document) for d in documents):
        raise TypeError("to_llama_index takes a list of ragpress Documents; wrap one as [document].")
    return [LlamaDocument(id_=d.id, text=d.text, metadata=dict(d.metadata)) for d in documents]


def from_llama_index(documents: Sequence[BaseNode]) -> list[Document]:
    """ragpress documents for LlamaIndex documents (or any text nodes), with the same ids, text
    and metadata (less ragpress's own keys)."""
    if isinstance(documents, BaseNode) or not all(isinstance(d, BaseNode) for d in documents):
        raise TypeError("from_llama_index takes a list of LlamaIndex documents; wrap one as [document].")
    return [Document(d.get_content(metadata_mode=MetadataMode.NONE), id=d.node_id, metadata=user_metadata(d.metadata)) for d in documents]
