"""What the server takes and gives: pydantic models with limits, since every request is untrusted.

A field over its limit (a query too long, too many passages, an id too long, an unknown field) is
refused by validation with 422 and the field's name; all the passages of one request together over
:data:`MAX_TOTAL_CHARS` characters, or a body over :data:`MAX_BODY_BYTES` bytes, are refused with
413 before any model runs. Text with lone surrogates (which JSON's ``\\ud800`` escapes can carry
but UTF-8 cannot) is refused with 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_QUERY_CHARS = 4_000
MAX_PASSAGES = 128
MAX_PASSAGE_CHARS = 100_000
MAX_TOTAL_CHARS = 200_000  # all passages of one /compress request together (413 above it)
MAX_BODY_BYTES = 6 * MAX_TOTAL_CHARS + 65_536  # JSON may spend 6 bytes on one character (\uXXXX)
MAX_ID_CHARS = 200


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("is blank: send the question as text")
    return text


Query = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY_CHARS), AfterValidator(_not_blank)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSAGE_CHARS)]


class Strict(BaseModel):
    """A request model: unknown fields are refused, not ignored, so a misspelt field is not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class QueryRequest(Strict):
    query: Query = Field(description=f"The question, at most {MAX_QUERY_CHARS:,} characters.")


class Passage(Strict):
    text: Text
    id: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS, description="Defaults to passage-<index>.")


class CompressRequest(Strict):
    query: Query
    passages: list[Text | Passage] = Field(
        min_length=1, max_length=MAX_PASSAGES, description=f"Texts, or {{text, id}}; at most {MAX_PASSAGES} of at most "
        f"{MAX_PASSAGE_CHARS:,} characters each, {MAX_TOTAL_CHARS:,} in all."
    )
    stage: str | None = Field(None, max_length=MAX_ID_CHARS, description="The compressor stage to run; needed only "
                              "when the pipeline has more than one.")

    @model_validator(mode="after")
    def _ids_are_unique(self) -> CompressRequest:
        ids = self.ids()
        if len(set(ids)) != len(ids):
            raise ValueError(f"passage ids must be unique, got {sorted({i for i in ids if ids.count(i) > 1})} more than once")
        return self

    def ids(self) -> list[str]:
        return [p.id if isinstance(p, Passage) and p.id else f"passage-{i}" for i, p in enumerate(self.passages)]

    def texts(self) -> list[str]:
        return [p.text if isinstance(p, Passage) else p for p in self.passages]


class Source(BaseModel):
    doc_id: str
    start: int = Field(description="Character offset into the document: its text is document.text[start:end].")
    end: int
    text: str
    score: float | None


class StageTiming(BaseModel):
    name: str
    stage: str = Field(description="The stage's class.")
    ms: float = Field(description="This request's share of the stage's time over its batch.")
    items_in: int
    items_out: int
    tokens_in: int | None
    tokens_out: int | None


class Batch(BaseModel):
    size: int = Field(description="Requests run together in one Pipeline.run_batch call.")
    queued_ms: float = Field(description="Time from arrival until its batch started.")


class QueryResponse(BaseModel):
    query: str
    answer: str | None = Field(description="The generated answer; null when the pipeline ends before a generator.")
    sources: list[Source]
    tokens_before: int | None = Field(description="Tokens retrieved before compression, when the pipeline compresses.")
    tokens_after: int | None
    trace: list[StageTiming]
    batch: Batch


class KeptPiece(BaseModel):
    passage: int = Field(description="Index of the passage in the request.")
    id: str
    start: int = Field(description="Character offset into that passage: its text is passage[start:end].")
    end: int
    text: str


class CompressResponse(BaseModel):
    stage: str
    type: str
    pieces: list[KeptPiece]
    tokens_before: int
    tokens_after: int
    ratio: float


class Health(BaseModel):
    status: str
    stages: list[str] = Field(description="name: class of each stage, in order.")
    documents: int = Field(description="Documents indexed by Pipeline.index.")
    requests: int = Field(description="/query requests run so far, to a result or an error.")
    batches: int = Field(description="Pipeline.run_batch calls made for them.")


def error(status: int, detail: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry."""
    return {status: {"description": detail, "content": {"application/json": {"example": {"detail": detail}}}}}
