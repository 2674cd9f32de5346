"""The stage protocol: a dataclass whose fields are its settings and whose ``run`` does its work.

A stage serialises to ``{"type": "package.Class", "settings": {...}}`` (its init fields only, under
the public path that exports the class), so a pipeline can be saved as JSON or YAML and rebuilt.
Models are not settings: stages load them lazily through :mod:`ragpress.core.loaders` on first use.
Every stage names its method (:attr:`Stage.method`) and writes that name into ``metadata["method"]``
of what it returns; ``run_batch`` runs a batch and equals ``run`` item by item.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from ragpress.core.legacy import upgrade
from ragpress.core.settings import check_settings
from ragpress.core.types import Answer, Chunk, Context, Document


@dataclasses.dataclass
class Stage:
    """Base of every stage. Subclasses are dataclasses that implement ``run`` with typed
    parameters and a typed return; a parameter named ``query`` receives the pipeline's query, the
    others receive the outputs of the stages wired into it."""

    kind: ClassVar[str] = "stage"
    method: ClassVar[str] = ""  # the method's name, written to metadata["method"] of every output

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def run_batch(self, *columns: Sequence[Any]) -> list[Any]:
        """:meth:`run` over a batch: ``columns`` holds one list per ``run`` parameter (the queries,
        then each upstream stage's outputs). Stages that can batch their model calls override it;
        the result always equals ``run`` item by item."""
        return [self.run(*row) for row in zip(*columns, strict=True)]

    def tag(self, output: Any) -> Any:
        """``output`` (a Context, an Answer, or a list of Chunks) with ``metadata["method"]`` set to
        this stage's :attr:`method`."""
        if isinstance(output, list):
            return [self.tag(item) for item in output]
        if isinstance(output, (Chunk, Context, Answer)):
            return replace(output, metadata={**output.metadata, "method": self.method})
        raise TypeError(f"{type(self).__name__} returned a {type(output).__name__}, which carries no metadata.")

    def settings(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def to_dict(self) -> dict[str, Any]:
        return {"type": public_path(type(self)), "settings": self.settings()}

    @staticmethod
    def from_dict(data: dict[str, Any], allow_external: bool = False, allow: Iterable[str] = ()) -> Stage:
        """Rebuild a stage from :meth:`to_dict` (or from a file saved under older names,
        :mod:`ragpress.core.legacy`), treating ``data`` as untrusted: only ragpress classes are
        imported unless ``allow_external`` is set, settings are checked by name and type, and a
        setting that names code, a host or a secret stays at its default unless named in ``allow``
        (:mod:`ragpress.core.settings`)."""
        if not isinstance(data, dict):
            raise ValueError(f"A stage is a mapping with 'type' and 'settings', got {type(data).__name__}.")
        data = upgrade(data)
        path = data.get("type", "")
        module_name, _, class_name = path.rpartition(".")
        if not module_name.startswith("ragpress.") and not allow_external:
            raise ValueError(f"Refusing to import stage type {path!r} from outside ragpress; pass allow_external=True to trust it.")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"Unknown stage type {path!r}: {error}") from error
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise ValueError(f"{path!r} is not a ragpress Stage.")
        return cls(**check_settings(cls, data.get("settings") or {}, allow))


def public_path(cls: type) -> str:
    """``package.Class`` for the shallowest ragpress module that exports ``cls`` (a method folder's
    ``__init__``, not its ``stage.py``), so saved pipelines survive moves inside a method's folder."""
    parts = cls.__module__.split(".")
    for depth in range(min(3, len(parts)), len(parts) + 1):
        module = ".".join(parts[:depth])
        if getattr(importlib.import_module(module), cls.__qualname__, None) is cls:
            return f"{module}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def check_documents(documents: Sequence[Document]) -> list[Document]:
    if isinstance(documents, (str, Document)) or not isinstance(documents, Sequence):
        raise TypeError(f"Expected a list of Document, got {type(documents).__name__}; wrap texts as [Document(text)].")
    if not documents:
        raise ValueError("The corpus is empty: pass at least one Document.")
    first: dict[str, int] = {}
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise TypeError(f"Item {i} is a {type(doc).__name__}, not a Document; wrap it as Document(text=...).")
        if first.setdefault(doc.id, i) != i:
            raise ValueError(
                f"Documents {first[doc.id]} and {i} have the same id {doc.id!r}; a chunk names its document by id, so "
                "ids must be unique: give each document its own id (without one, the id is a hash of the text, so "
                "identical texts collide: drop the duplicates)."
            )
    return list(documents)


def check_chunks(chunks: Sequence[Chunk], *, allow_empty: bool = True) -> list[Chunk]:
    if isinstance(chunks, (str, Chunk)) or not isinstance(chunks, Sequence):
        raise TypeError(f"Expected a list of Chunk, got {type(chunks).__name__}.")
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, Chunk):
            raise TypeError(f"Item {i} is a {type(chunk).__name__}, not a Chunk.")
    if not chunks and not allow_empty:
        raise ValueError("No chunks to index: the corpus is empty or every document was blank.")
    return list(chunks)


def check_query(query: str) -> str:
    if not isinstance(query, str):
        raise TypeError(f"The query must be a str, got {type(query).__name__}.")
    if not query.strip():
        raise ValueError("The query is empty: pass the question as text.")
    return query
