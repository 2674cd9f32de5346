"""LangChain adapters (optional extra: ``pip install 'ragpress[langchain]'``, which brings
``langchain-core`` and ``langchain-text-splitters``).

Any ragpress stage works unchanged inside LangChain:

- :class:`RagpressTextSplitter` — any :class:`~ragpress.chunkers.base.Chunker` as a ``TextSplitter``;
- :class:`RagpressRetriever` — any :class:`~ragpress.retrievers.base.Retriever` (or a Pipeline
  ending in one) as a ``BaseRetriever``;
- :class:`RagpressDocumentCompressor` — any :class:`~ragpress.compressors.base.Compressor` or
  :class:`~ragpress.retrievers.base.Reranker` as a ``BaseDocumentCompressor``, so
  ``ContextualCompressionRetriever`` (in ``langchain-classic``) can use it; one class per method
  built from its settings: :class:`ProvenceCompressor`, :class:`LongCodeZipCompressor`,
  :class:`EDUSelectCompressor`, :class:`BudgetPackerCompressor`, :class:`RebelCompressor`;
- :class:`RagpressChatModel` — any :class:`~ragpress.generators.base.Generator` as a chat model;
- :class:`RagpressRunnable` — a whole :class:`~ragpress.pipelines.graph.Pipeline` as a
  ``Runnable`` (``invoke``, ``batch``, ``stream`` and their async forms);
- :func:`to_langchain` / :func:`from_langchain` — ragpress ``Document`` objects to LangChain's and back.

>>> splits = RagpressTextSplitter(SentenceChunker(max_tokens=128)).split_documents(docs)
>>> retriever = RagpressRetriever(DenseRetriever(top_k=8), documents=splits)
>>> docs = ProvenceCompressor(threshold=0.1).compress_documents(retriever.invoke(q), q)

Metadata layout. A ``Document``'s metadata is the user's: ragpress never overwrites a key it did
not write (``doc_id``, ``start_index``, ``score``, ``title``, ``source``... stay as they were).
Everything ragpress adds is under keys that start with ``ragpress_``: the span
(``ragpress_doc_id``, ``ragpress_start``, ``ragpress_end``), ``ragpress_score``,
``ragpress_token_count``, ``ragpress_children`` (sub-spans, as JSON) and stage bookkeeping
(``ragpress_method``, ``ragpress_chunk_index``, ``ragpress_rerank_score``...). LangChain's own
``start_index`` is written where ragpress knows it (splitters with ``add_start_index=True``,
pipeline outputs) and, for a piece a compressor cut from a document, moved by the piece's offset
inside it, so ``source_text[start_index:start_index + len(page_content)] == page_content`` holds
for the piece as it held for the document. A new document's ``id`` is ``"{doc_id}:{start}-{end}"``.

Reading a ``Document``: its span is ``ragpress_doc_id``/``ragpress_start``/``ragpress_end`` when
present; else, for a split of LangChain's own splitters (``start_index`` and no ragpress keys), the
span at ``start_index`` of the document its ``source`` metadata names (a hash of its other metadata
when it has no ``source``); else it is a whole document of its own, named by its ``id`` or a hash
of its text (as ``ragpress.Document`` names one). A ``Document`` without text is an error.
"""

try:
    import langchain_core  # noqa: F401
    import langchain_text_splitters  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ragpress.integrations.langchain needs langchain-core and langchain-text-splitters: "
        "pip install 'ragpress[langchain]'."
    ) from error

from ragpress.integrations.langchain.chat_model import RagpressChatModel
from ragpress.integrations.langchain.compressor import RagpressDocumentCompressor
from ragpress.integrations.langchain.convert import chunk_to_document, document_to_chunk, from_langchain, to_langchain
from ragpress.integrations.langchain.methods import (
    BudgetPackerCompressor,
    EDUSelectCompressor,
    LongCodeZipCompressor,
    ProvenceCompressor,
    RebelCompressor,
)
from ragpress.integrations.langchain.retriever import RagpressRetriever
from ragpress.integrations.langchain.runnable import RagpressRunnable
from ragpress.integrations.langchain.splitter import RagpressTextSplitter

__all__ = [
    "BudgetPackerCompressor",
    "EDUSelectCompressor",
    "LongCodeZipCompressor",
    "ProvenceCompressor",
    "RagpressChatModel",
    "RagpressDocumentCompressor",
    "RagpressRetriever",
    "RagpressRunnable",
    "RagpressTextSplitter",
    "RebelCompressor",
    "chunk_to_document",
    "document_to_chunk",
    "from_langchain",
    "to_langchain",
]
