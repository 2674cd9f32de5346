"""Any ragpress compressor or reranker as a LangChain document compressor."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor
from langchain_core.documents import Document as LCDocument
from pydantic import Field, InstanceOf, PlainSerializer, model_validator

from ragpress.core.errors import BudgetTooSmallError
from ragpress.core.stage import Stage
from ragpress.integrations._common import check_chunk_stage, postprocess
from ragpress.integrations.langchain.convert import document_to_chunk, pieces_to_documents


class RagpressDocumentCompressor(BaseDocumentCompressor):
    """Any ragpress compressor or reranker as a LangChain document compressor, for
    ``ContextualCompressionRetriever`` (in ``langchain-classic``) or any chain. Unchanged spans come
    back as the original documents (ragpress's score and method added to their metadata); pieces cut
    from a document come back as new documents with its metadata, ``start_index`` moved to where the
    piece starts in the same source, and their span. When a budgeted compressor can keep nothing
    (:class:`~ragpress.core.errors.BudgetTooSmallError`), it warns and returns no documents rather
    than failing the chain. ``acompress_documents`` runs in a worker thread (LangChain's default)."""

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
        try:
            pieces = postprocess(self.stage, query, chunks)
        except BudgetTooSmallError as error:
            budget = getattr(self.stage, "budget", None)
            warnings.warn(
                f"{type(self.stage).__name__}(budget={budget}) could keep none of the {len(documents)} documents, so it "
                f"returns none: {error}",
                RuntimeWarning,
                stacklevel=2,
            )
            return []
        return pieces_to_documents(pieces, documents, chunks)
