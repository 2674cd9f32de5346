"""LlamaIndex adapters (optional extra: ``pip install 'ragpress[llamaindex]'``).

Any ragpress stage works unchanged inside LlamaIndex:

- :class:`ChunkerNodeParser` — any :class:`~ragpress.chunkers.base.Chunker` as a node parser;
- :class:`RagpressRetriever` — any :class:`~ragpress.retrievers.base.Retriever` (or a Pipeline
  ending in one, e.g. dense + BM25 fused) as a ``BaseRetriever``;
- :class:`RagpressPostprocessor` — any :class:`~ragpress.compressors.base.Compressor` or
  :class:`~ragpress.retrievers.base.Reranker` as a ``BaseNodePostprocessor``;
- :class:`RagpressLLM` — any :class:`~ragpress.generators.base.Generator` as a ``CustomLLM``.

>>> parser = ChunkerNodeParser(SentenceChunker(max_tokens=128))
>>> nodes = parser.get_nodes_from_documents(documents)
>>> engine = RetrieverQueryEngine.from_args(
...     RagpressRetriever(DenseRetriever(k=8), nodes=nodes),
...     llm=RagpressLLM(TransformersGenerator()),
...     node_postprocessors=[RagpressPostprocessor(BudgetPacker(budget=384))])

Nodes and chunks convert both ways (:func:`chunk_to_node`, :func:`node_to_chunk`) without losing
offsets (``start_char_idx``/``end_char_idx`` into the document named by ``ref_doc_id``), score or
metadata; ``token_count`` and ``children`` travel in metadata (``token_count``, ``ragpress_children``),
hidden from embeddings and the LLM.
Node ids are ``"{doc_id}:{start}-{end}"``, so a span has the same id wherever it is converted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

try:
    from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback
    from llama_index.core.llms.custom import CustomLLM
    from llama_index.core.node_parser.interface import NodeParser
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import (
        BaseNode,
        MetadataMode,
        NodeRelationship,
        NodeWithScore,
        QueryBundle,
        RelatedNodeInfo,
        TextNode,
    )
    from pydantic import Field, InstanceOf, PlainSerializer
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ragpress.integrations.llama_index needs llama-index-core: pip install 'ragpress[llamaindex]'."
    ) from error

from ragpress.chunkers.base import Chunker
from ragpress.core.stage import Stage
from ragpress.core.types import Chunk, Context, Document
from ragpress.generators.base import Generator
from ragpress.integrations._common import (
    check_chunk_stage,
    check_retrieval_stage,
    locate,
    pack_extras,
    postprocess,
    retrieve,
    span_id,
    trace_back,
    unpack_extras,
)
from ragpress.retrievers.base import Retriever

# Stages serialise as ragpress does (type and settings), so LlamaIndex's to_dict/to_json show them.
_AsDict = PlainSerializer(lambda stage: stage.to_dict(), return_type=dict)

__all__ = ["ChunkerNodeParser", "RagpressLLM", "RagpressPostprocessor", "RagpressRetriever", "chunk_to_node", "node_to_chunk"]


def chunk_to_node(chunk: Chunk, parent: BaseNode | None = None) -> TextNode:
    """A ``TextNode`` for ``chunk``. With ``parent`` (the node the chunk was cut from), the new node
    inherits its metadata, hidden keys and source document."""
    extras = pack_extras(chunk)
    metadata, hidden_embed, hidden_llm = dict(chunk.metadata), list(extras), list(extras)
    source = RelatedNodeInfo(node_id=chunk.doc_id)
    if parent is not None:
        metadata = unpack_extras(parent.metadata)[1] | metadata
        hidden_embed += [k for k in parent.excluded_embed_metadata_keys if k not in hidden_embed]
        hidden_llm += [k for k in parent.excluded_llm_metadata_keys if k not in hidden_llm]
        if parent.node_id == chunk.doc_id:  # cut from the document itself (or a node standing as one)
            source = parent.as_related_node_info()
        elif parent.ref_doc_id == chunk.doc_id:
            source = parent.source_node
    return TextNode(
        id_=span_id(chunk),
        text=chunk.text,
        start_char_idx=chunk.start,
        end_char_idx=chunk.end,
        metadata=metadata | extras,
        excluded_embed_metadata_keys=hidden_embed,
        excluded_llm_metadata_keys=hidden_llm,
        relationships={NodeRelationship.SOURCE: source},
    )


def node_to_chunk(node: BaseNode | NodeWithScore) -> Chunk:
    """The ragpress chunk for a node: its text, its span of the document ``ref_doc_id`` names and
    its metadata (and score, for a ``NodeWithScore``). A node without ``ref_doc_id`` or offsets is
    taken as a whole document of its own, named by its node id; a node without text is an error."""
    score = None
    if isinstance(node, NodeWithScore):
        node, score = node.node, node.score
    if not isinstance(node, BaseNode):
        raise TypeError(f"Expected a LlamaIndex node, got {type(node).__name__}.")
    text = node.get_content(metadata_mode=MetadataMode.NONE)
    start, end = getattr(node, "start_char_idx", None), getattr(node, "end_char_idx", None)
    what = f"LlamaIndex {type(node).__name__} {node.node_id!r}"
    doc_id, start, end = locate(text, node.ref_doc_id, start, end, node.node_id, what)
    fields, metadata = unpack_extras(node.metadata)
    return Chunk(doc_id=doc_id, start=start, end=end, text=text, score=score, metadata=metadata, **fields)


def _scored_nodes(pieces: Sequence[Chunk], originals: Sequence[NodeWithScore | BaseNode], chunks: Sequence[Chunk]) -> list[NodeWithScore]:
    """Nodes for the pieces a stage returned: the original node where the span is unchanged (with
    the new score), else a new node for the piece that inherits from the node it was cut from."""
    out = []
    for piece, index in zip(pieces, trace_back(chunks, pieces)):
        original = None if index is None else originals[index]
        if isinstance(original, NodeWithScore):
            original = original.node
        same = index is not None and (chunks[index].start, chunks[index].end) == (piece.start, piece.end)
        score = piece.score if piece.score is not None or index is None else chunks[index].score
        out.append(NodeWithScore(node=original if same else chunk_to_node(piece, original), score=score))
    return out


class ChunkerNodeParser(NodeParser):
    """Any ragpress chunker as a LlamaIndex node parser. Each node is an exact span of its
    document (``start_char_idx``/``end_char_idx``, ``ref_doc_id``), and carries the document's
    metadata as LlamaIndex's own parsers do. As with ragpress chunkers, a blank document gives no
    nodes; ``id_func`` is not used (node ids are spans, see the module docstring)."""

    chunker: Annotated[InstanceOf[Chunker], _AsDict] = Field(description="The ragpress chunker that cuts each document.")

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
                piece = chunk_to_node(chunk, node if self.include_metadata else None)
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


class RagpressRetriever(BaseRetriever):
    """Any ragpress retriever, or a Pipeline that ends in one, as a LlamaIndex retriever.

    Pass ``nodes`` to index the retriever on them; it then returns those same node objects (with
    their relationships and embeddings) rather than new ones."""

    def __init__(self, retriever: Retriever | Any, nodes: Sequence[BaseNode] | None = None, **kwargs: Any):
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
        return _scored_nodes(chunks, self._nodes, self._chunks)


class RagpressPostprocessor(BaseNodePostprocessor):
    """Any ragpress compressor or reranker as a LlamaIndex node postprocessor, so a
    ``RetrieverQueryEngine`` can use it unchanged. Unchanged spans come back as the original
    nodes; pieces a compressor cut from a node come back as new nodes with that node's metadata
    and source document, and offsets into it. Soft (embedding) compressors cannot hand back text
    and are refused when run."""

    stage: Annotated[InstanceOf[Stage], _AsDict] = Field(description="The ragpress Compressor or Reranker.")

    def __init__(self, stage: Stage, **kwargs: Any):
        check_chunk_stage(stage)
        super().__init__(stage=stage, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "RagpressPostprocessor"

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError(f"{type(self.stage).__name__} needs the query: call postprocess_nodes(nodes, query_str=...).")
        if not nodes:
            return []
        chunks = [node_to_chunk(n) for n in nodes]
        return _scored_nodes(postprocess(self.stage, query_bundle.query_str, chunks), nodes, chunks)


class RagpressLLM(CustomLLM):
    """Any ragpress generator as a LlamaIndex LLM. The prompt LlamaIndex builds reaches the
    generator as the question of a context without sources, so the generator's chat template and
    system prompt apply. ``context_window`` tells LlamaIndex how much prompt to build."""

    generator: Annotated[InstanceOf[Generator], _AsDict] = Field(description="The ragpress generator that answers.")
    context_window: int = Field(default=2048, gt=0, description="Tokens of prompt the model can take.")

    def __init__(self, generator: Generator, **kwargs: Any):
        super().__init__(generator=generator, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "RagpressLLM"

    @property
    def metadata(self) -> LLMMetadata:
        name = getattr(self.generator, "model", type(self.generator).__name__)
        return LLMMetadata(context_window=self.context_window, num_output=self.generator.max_new_tokens, model_name=str(name))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        answer = self.generator.run(Context(query=prompt))
        tokens = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens}
        return CompletionResponse(text=answer.text, additional_kwargs=tokens)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        def pieces() -> CompletionResponseGen:
            text = ""
            for delta in self.generator.stream(Context(query=prompt)):
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return pieces()
