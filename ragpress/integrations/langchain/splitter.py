"""Any ragpress chunker as a LangChain text splitter."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from langchain_core.documents import Document as LCDocument
from langchain_text_splitters import TextSplitter

from ragpress.chunkers.base import Chunker
from ragpress.core.types import Document
from ragpress.integrations.langchain.convert import chunk_to_document

_NO_FOREIGN_TOKENIZER = (
    "RagpressTextSplitter.{} would count with another tokenizer than the chunker's own; build the chunker "
    "with the tokenizer you want (e.g. SentenceChunker(tokenizer='gpt2', max_tokens=256)) and pass it: "
    "RagpressTextSplitter(chunker)."
)


class RagpressTextSplitter(TextSplitter):
    """Any ragpress chunker as a LangChain text splitter. Each piece is an exact span of its source
    (exact even where the same text repeats), keeps the source's metadata and carries its span under
    ragpress's keys; ``add_start_index=True`` also writes LangChain's ``start_index``. As with
    ragpress chunkers, a blank document gives no pieces.

    LangChain's arguments, as ragpress reads them: ``chunk_size`` sets the chunker's ``max_tokens``
    (tokens of the chunker's own tokenizer, not characters; a chunker without that setting refuses
    it); ``chunk_overlap`` must be 0, for ragpress chunkers do not overlap; ``length_function`` must
    stay ``len``, for the chunker counts with its own tokenizer; ``strip_whitespace`` must stay true,
    for ragpress chunks never start or end with whitespace; ``keep_separator`` changes nothing, for a
    piece is an exact span of the source and separators stay where they are."""

    def __init__(
        self,
        chunker: Chunker,
        chunk_size: int | None = None,
        chunk_overlap: int = 0,
        length_function: Callable[[str], int] = len,
        keep_separator: bool | str = False,
        add_start_index: bool = False,
        strip_whitespace: bool = True,
    ):
        if not isinstance(chunker, Chunker):
            raise TypeError(f"RagpressTextSplitter wraps a ragpress Chunker, got {type(chunker).__name__}.")
        if chunk_overlap:
            raise ValueError(f"chunk_overlap={chunk_overlap}: ragpress chunkers do not overlap; pass chunk_overlap=0 (or leave it out).")
        if length_function is not len:
            raise ValueError(f"{type(chunker).__name__} counts length with its own tokenizer; leave length_function out (set the chunker's tokenizer instead).")
        if not strip_whitespace:
            raise ValueError("ragpress chunks never start or end with whitespace; leave strip_whitespace=True.")
        if chunk_size is not None:
            if "max_tokens" not in {f.name for f in dataclasses.fields(chunker)}:
                raise TypeError(
                    f"chunk_size sets a chunker's max_tokens, and {type(chunker).__name__} has no such setting "
                    f"(its settings: {', '.join(chunker.settings())}); set the chunker's own settings and leave chunk_size out."
                )
            chunker = dataclasses.replace(chunker, max_tokens=chunk_size)
        super().__init__(chunk_size=chunk_size or 4000, chunk_overlap=0, keep_separator=keep_separator,
                         add_start_index=add_start_index, strip_whitespace=True)
        self.chunker = chunker
        self.add_start_index = add_start_index

    @classmethod
    def from_tiktoken_encoder(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(_NO_FOREIGN_TOKENIZER.format("from_tiktoken_encoder (which downloads an encoding)"))

    @classmethod
    def from_huggingface_tokenizer(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(_NO_FOREIGN_TOKENIZER.format("from_huggingface_tokenizer"))

    def split_text(self, text: str) -> list[str]:
        return [chunk.text for chunk in self.chunker.run([Document(text)])]

    def create_documents(self, texts: list[str], metadatas: list[dict] | None = None) -> list[LCDocument]:
        metadatas = metadatas if metadatas is not None else [{}] * len(texts)
        return self.split_documents([LCDocument(page_content=t, metadata=m) for t, m in zip(texts, metadatas, strict=True)])

    def split_documents(self, documents: Sequence[LCDocument]) -> list[LCDocument]:
        out = []
        for source in documents:  # one at a time, so equal texts with different metadata stay apart
            document = Document(source.page_content, id=source.id or "")
            out.extend(chunk_to_document(c, source.metadata, self.add_start_index) for c in self.chunker.run([document]))
        return out

