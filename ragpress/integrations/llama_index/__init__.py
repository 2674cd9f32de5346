"""LlamaIndex adapters (optional extra: ``pip install 'ragpress[llamaindex]'``).

Any ragpress stage works unchanged inside LlamaIndex:

- :class:`ChunkerNodeParser`: any :class:`~ragpress.chunkers.base.Chunker` as a node parser;
- :class:`RagpressRetriever`: any :class:`~ragpress.retrievers.base.Retriever` (or a Pipeline
  ending in one, e.g. dense + BM25 fused) as a ``BaseRetriever``;
- :class:`RagpressNodePostprocessor`: any :class:`~ragpress.compressors.base.Compressor` or
  :class:`~ragpress.retrievers.base.Reranker` as a ``BaseNodePostprocessor``; one class per method
  takes that method's settings: :class:`ProvencePostprocessor`, :class:`LongCodeZipPostprocessor`,
  :class:`EDUSelectPostprocessor`, :class:`BudgetPackerPostprocessor`, :class:`RebelPostprocessor`;
- :class:`RagpressLLM`: any :class:`~ragpress.generators.base.Generator` as a chat LLM;
- :class:`RagpressQueryEngine`: a whole Pipeline ending in a generator as a query engine.

>>> parser = ChunkerNodeParser(SentenceChunker(max_tokens=128))
>>> nodes = parser.get_nodes_from_documents(to_llama_index(documents))
>>> engine = RetrieverQueryEngine.from_args(
...     RagpressRetriever(DenseRetriever(top_k=8), nodes=nodes),
...     llm=RagpressLLM(TransformersGenerator()),
...     node_postprocessors=[ProvencePostprocessor(threshold=0.1)])

Nodes and chunks convert both ways (:func:`chunk_to_node`, :func:`node_to_chunk`) without losing
offsets (``start_char_idx``/``end_char_idx`` into the document named by ``ref_doc_id``), score
(``NodeWithScore.score``) or metadata; documents convert both ways with :func:`to_llama_index` and
:func:`from_llama_index`. What ragpress adds to a node's metadata (``token_count``, ``children``,
a stage's bookkeeping such as ``chunk_index``) sits under ``ragpress_`` keys, never over the
user's keys, and is excluded from embeddings and LLM prompts on every node ragpress hands back.
Node ids are ``"{doc_id}:{start}-{end}"``, so a span has the same id wherever it is converted.
The async forms of retrieval, postprocessing, generation and querying run the blocking work in a
worker thread, so concurrent queries overlap.
"""

try:
    import llama_index.core  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ragpress.integrations.llama_index needs llama-index-core: pip install 'ragpress[llamaindex]'."
    ) from error

from ragpress.integrations.llama_index.llm import RagpressLLM
from ragpress.integrations.llama_index.nodes import chunk_to_node, from_llama_index, node_to_chunk, to_llama_index
from ragpress.integrations.llama_index.parser import ChunkerNodeParser
from ragpress.integrations.llama_index.postprocessors import (
    BudgetPackerPostprocessor,
    EDUSelectPostprocessor,
    LongCodeZipPostprocessor,
    ProvencePostprocessor,
    RagpressNodePostprocessor,
    RebelPostprocessor,
)
from ragpress.integrations.llama_index.query_engine import RagpressQueryEngine
from ragpress.integrations.llama_index.retriever import RagpressRetriever

__all__ = [
    "BudgetPackerPostprocessor",
    "ChunkerNodeParser",
    "EDUSelectPostprocessor",
    "LongCodeZipPostprocessor",
    "ProvencePostprocessor",
    "RagpressLLM",
    "RagpressNodePostprocessor",
    "RagpressQueryEngine",
    "RagpressRetriever",
    "RebelPostprocessor",
    "chunk_to_node",
    "from_llama_index",
    "node_to_chunk",
    "to_llama_index",
]
