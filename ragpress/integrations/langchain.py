"""LangChain adapters (optional extra: ``pip install 'ragpress[langchain]'``, which brings
``langchain-core`` and ``langchain-text-splitters``).

Any ragpress stage works unchanged inside LangChain:

- :class:`RagpressTextSplitter` — any :class:`~ragpress.chunkers.base.Chunker` as a ``TextSplitter``;
- :class:`RagpressRetriever` — any :class:`~ragpress.retrievers.base.Retriever` (or a Pipeline
  ending in one) as a ``BaseRetriever``;
- :class:`RagpressCompressor` — any :class:`~ragpress.compressors.base.Compressor` or
  :class:`~ragpress.retrievers.base.Reranker` as a ``BaseDocumentCompressor``, so
  ``ContextualCompressionRetriever`` (in ``langchain-classic``) can use it;
- :class:`RagpressRunnable` — a whole :class:`~ragpress.pipelines.graph.Pipeline` as a
  ``Runnable`` (``invoke``, ``batch``, ``stream``).

>>> splits = RagpressTextSplitter(SentenceChunker(max_tokens=128)).split_documents(docs)
>>> retriever = RagpressRetriever(DenseRetriever(k=8), documents=splits)
>>> docs = RagpressCompressor(BudgetPacker(budget=384)).compress_documents(retriever.invoke(q), q)

A chunk becomes a ``Document`` whose ``metadata`` holds its span, ``doc_id``, ``start_index``
(LangChain's own key for it) and ``end_index``, plus ``score``, ``token_count`` and ``ragpress_children``
(its sub-spans) when it has them, and whose ``id`` is ``"{doc_id}:{start}-{end}"``. A ``Document`` without
``doc_id`` and ``start_index`` in its metadata is taken as a whole document of its own, named by
its ``id`` or else a hash of its text (as ``ragpress.Document`` names one); a ``Document`` without
text is an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
    from langchain_core.documents import BaseDocumentCompressor
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable, RunnableConfig
    from langchain_text_splitters import TextSplitter
    from pydantic import ConfigDict, Field, InstanceOf, PlainSerializer, PrivateAttr, model_validator
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ragpress.integrations.langchain needs langchain-core and langchain-text-splitters: "
        "pip install 'ragpress[langchain]'."
    ) from error

from ragpress.chunkers.base import Chunker
from ragpress.core.stage import Stage
from ragpress.core.types import Answer, Chunk, Context, Document
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
from ragpress.pipelines.graph import Pipeline
from ragpress.pipelines.trace import Result
from ragpress.retrievers.base import Retriever

__all__ = ["RagpressCompressor", "RagpressRetriever", "RagpressRunnable", "RagpressTextSplitter", "chunk_to_document", "document_to_chunk"]

_SPAN_KEYS = ("doc_id", "start_index", "end_index")


def chunk_to_document(chunk: Chunk, parent: LCDocument | None = None) -> LCDocument:
    """A LangChain ``Document`` for ``chunk``; with ``parent`` (the document it was cut from) it
    inherits the parent's metadata, score included unless the chunk has its own."""
    inherited = unpack_extras({k: v for k, v in parent.metadata.items() if k not in _SPAN_KEYS})[1] if parent else {}
    span = {"doc_id": chunk.doc_id, "start_index": chunk.start, "end_index": chunk.end}
    score = {} if chunk.score is None else {"score": chunk.score}
    metadata = inherited | dict(chunk.metadata) | span | score | pack_extras(chunk)
    return LCDocument(page_content=chunk.text, metadata=metadata, id=span_id(chunk))


def document_to_chunk(document: LCDocument) -> Chunk:
    """The ragpress chunk for a LangChain ``Document`` (see the module docstring for defaults)."""
    if not isinstance(document, LCDocument):
        raise TypeError(f"Expected a LangChain Document, got {type(document).__name__}.")
    metadata = dict(document.metadata or {})
    span = {key: metadata.pop(key, None) for key in (*_SPAN_KEYS, "score")}
    text = document.page_content
    own_id = document.id or (Document(text).id if isinstance(text, str) else "")
    what = f"LangChain Document {document.id!r}" if document.id else "A LangChain Document"
    doc_id, start, end = locate(text, span["doc_id"], span["start_index"], span["end_index"], own_id, what)
    fields, metadata = unpack_extras(metadata)
    return Chunk(doc_id=doc_id, start=start, end=end, text=text, score=span["score"], metadata=metadata, **fields)


def _documents(pieces: Sequence[Chunk], originals: Sequence[LCDocument], chunks: Sequence[Chunk]) -> list[LCDocument]:
    """Documents for the pieces a stage returned: the original where the span is unchanged (with
    the new score in its metadata), else a new document that inherits from the one it was cut from."""
    out = []
    for piece, index in zip(pieces, trace_back(chunks, pieces)):
        original = None if index is None else originals[index]
        if index is not None and (chunks[index].start, chunks[index].end) == (piece.start, piece.end):
            score = {} if piece.score is None else {"score": piece.score}
            out.append(original.model_copy(update={"metadata": original.metadata | score}))
        else:
            out.append(chunk_to_document(piece, original))
    return out


class RagpressTextSplitter(TextSplitter):
    """Any ragpress chunker as a LangChain text splitter. The chunker's own settings decide the
    chunks; LangChain's ``chunk_size``/``chunk_overlap`` do not apply. Each piece keeps its span
    of the source in its metadata (``doc_id``, ``start_index``, ``end_index``), exact even where
    the same text repeats, and the source's metadata. As with ragpress chunkers, a blank document
    gives no pieces."""

    def __init__(self, chunker: Chunker):
        if not isinstance(chunker, Chunker):
            raise TypeError(f"RagpressTextSplitter wraps a ragpress Chunker, got {type(chunker).__name__}.")
        super().__init__()
        self.chunker = chunker

    def split_text(self, text: str) -> list[str]:
        return [chunk.text for chunk in self.chunker.run([Document(text)])]

    def create_documents(self, texts: list[str], metadatas: list[dict] | None = None) -> list[LCDocument]:
        metadatas = metadatas if metadatas is not None else [{}] * len(texts)
        return self.split_documents([LCDocument(page_content=t, metadata=m) for t, m in zip(texts, metadatas, strict=True)])

    def split_documents(self, documents: Sequence[LCDocument]) -> list[LCDocument]:
        out = []
        for source in documents:  # one at a time, so equal texts with different metadata stay apart
            document = Document(source.page_content, id=source.id or "", metadata=dict(source.metadata))
            out.extend(chunk_to_document(chunk, source) for chunk in self.chunker.run([document]))
        return out


class RagpressRetriever(BaseRetriever):
    """Any ragpress retriever, or a Pipeline that ends in one, as a LangChain retriever.

    Pass ``documents`` to index the retriever on them; it then returns those same documents (with
    the score added to their metadata)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: Any = Field(description="A ragpress Retriever, or a Pipeline ending in one.")
    documents: list[LCDocument] | None = Field(default=None, description="Documents to index the retriever on.")
    _chunks: list[Chunk] = PrivateAttr(default_factory=list)

    def __init__(self, retriever: Retriever | Pipeline, documents: Sequence[LCDocument] | None = None, **kwargs: Any):
        super().__init__(retriever=retriever, documents=None if documents is None else list(documents), **kwargs)

    @model_validator(mode="after")
    def _index(self) -> RagpressRetriever:
        check_retrieval_stage(self.retriever)
        if self.documents is not None:
            if not isinstance(self.retriever, Retriever):
                raise TypeError("Only a single Retriever can be indexed on documents; index a Pipeline with pipeline.index(documents).")
            self._chunks = [document_to_chunk(d) for d in self.documents]
            self.retriever.index(self._chunks)
        return self

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        chunks = retrieve(self.retriever, query)
        return _documents(chunks, self.documents or [], self._chunks)


class RagpressCompressor(BaseDocumentCompressor):
    """Any ragpress compressor or reranker as a LangChain document compressor. Unchanged spans come
    back as the original documents (with ``score`` in their metadata); pieces a compressor cut from a
    document come back as new documents with its metadata and offsets into its source."""

    stage: Annotated[InstanceOf[Stage], PlainSerializer(lambda stage: stage.to_dict(), return_type=dict)] = Field(
        description="The ragpress Compressor or Reranker."
    )

    def __init__(self, stage: Stage, **kwargs: Any):
        super().__init__(stage=stage, **kwargs)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        check_chunk_stage(data.get("stage") if isinstance(data, dict) else None)
        return data

    def compress_documents(self, documents: Sequence[LCDocument], query: str, callbacks: Callbacks | None = None) -> Sequence[LCDocument]:
        documents = list(documents)
        if not documents:
            return []
        chunks = [document_to_chunk(d) for d in documents]
        return _documents(postprocess(self.stage, query, chunks), documents, chunks)


class RagpressRunnable(Runnable[str, Any]):
    """A ragpress Pipeline as a LangChain ``Runnable`` over a query string.

    ``invoke`` gives the final stage's output in LangChain's terms: the answer text for a pipeline
    that ends in a generator (so it equals the concatenation of what ``stream`` yields), else the
    pieces as ``Document`` objects; with ``return_result=True`` it gives the ragpress ``Result``
    (output, every stage's output, trace). ``batch`` runs the queries through
    :meth:`Pipeline.run_batch`, so batched stages get them in one call; ``stream`` yields the
    generator's text as it is generated."""

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

    def batch(self, inputs: list[str], config: RunnableConfig | list[RunnableConfig] | None = None, *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        if return_exceptions:  # one failing query must not fail the others: run them one by one
            return super().batch(inputs, config, return_exceptions=True, **kwargs)
        run = lambda queries: [self._convert(r) for r in self.pipeline.run_batch(queries)]  # noqa: E731
        return self._batch_with_config(run, list(inputs), config, run_type="chain")

    def stream(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        if not self._answers:
            yield self.invoke(input, config)
            return
        pieces = lambda queries: (piece for query in queries for piece in self.pipeline.stream(query))  # noqa: E731
        yield from self._transform_stream_with_config(iter([input]), pieces, config, run_type="chain")

    def _convert(self, result: Result) -> Any:
        output = result.output
        if self.return_result:
            return result
        if isinstance(output, Answer):
            return output.text
        pieces = output.pieces if isinstance(output, Context) else output
        if not (isinstance(pieces, (list, tuple)) and all(isinstance(p, Chunk) for p in pieces)):
            raise TypeError(f"The pipeline's final stage gives {type(output).__name__}; pass return_result=True to get it as is.")
        return [chunk_to_document(piece) for piece in pieces]
