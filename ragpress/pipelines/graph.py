"""The pipeline graph: stages wired by name, checked when wired, run for one query or a batch,
traced, and saved as a dict, JSON or YAML.

>>> rag = Pipeline(chunker=SentenceChunker())
>>> rag.add("dense", DenseRetriever(top_k=8)).add("bm25", BM25Retriever(top_k=8))
>>> rag.add("fuse", ReciprocalRankFusion(top_k=8), after=["dense", "bm25"])
>>> rag.add("pack", BudgetPacker(budget=512), after="fuse")
>>> rag.add("answer", TransformersGenerator(), after="pack")
>>> rag.index(documents)
>>> result = rag.run("How does the with statement work?")

A stage's ``run`` parameters say what it takes: a parameter named ``query`` receives the query,
the others receive the outputs of the stages it is wired ``after`` (a ``*rankings`` parameter
takes any number of them), and its return annotation says what it gives. Wiring checks that
these types match, so a broken graph fails when it is declared, naming both stages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import time
import typing
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from ragpress.chunkers.base import Chunker
from ragpress.core.loaders import timing_loads
from ragpress.core.settings import read_yaml
from ragpress.core.stage import Stage, check_documents, check_query
from ragpress.core.types import Chunk, Context, Document, check_provenance
from ragpress.pipelines.trace import Result, StageTrace, stage_trace
from ragpress.retrievers.base import Retriever


@dataclasses.dataclass(frozen=True)
class Ports:
    """What a stage's ``run`` takes and gives, read from its annotations."""

    wants_query: bool
    inputs: tuple[Any, ...]  # the type of each upstream parameter
    variadic: Any  # the type of a *args parameter, or None
    output: Any

    @classmethod
    def of(cls, stage: Stage) -> Ports:
        hints = typing.get_type_hints(stage.run)
        params = list(inspect.signature(stage.run).parameters.values())
        wants_query = bool(params) and params[0].name == "query"
        rest = params[1:] if wants_query else params
        fixed = tuple(hints[p.name] for p in rest if p.kind is p.POSITIONAL_OR_KEYWORD)
        variadic = next((hints[p.name] for p in rest if p.kind is p.VAR_POSITIONAL), None)
        return cls(wants_query, fixed, variadic, hints.get("return"))


@dataclasses.dataclass(frozen=True)
class Node:
    name: str
    stage: Stage
    after: tuple[str, ...]
    ports: Ports


class Pipeline:
    def __init__(self, chunker: Chunker | None = None):
        if chunker is not None and not isinstance(chunker, Chunker):
            raise TypeError(f"chunker must be a Chunker, got {type(chunker).__name__}.")
        self.chunker = chunker
        self.nodes: dict[str, Node] = {}
        self.documents: dict[str, Document] = {}

    def __repr__(self) -> str:
        lines = [f"Pipeline(chunker={type(self.chunker).__name__ if self.chunker else None})"]
        for node in self.nodes.values():
            source = ", ".join(node.after) or "query"
            lines.append(f"  {source} -> {node.name}: {type(node.stage).__name__} -> {_type_name(node.ports.output)}")
        return "\n".join(lines)

    def add(self, name: str, stage: Stage, after: str | Sequence[str] = ()) -> Pipeline:
        """Wire ``stage`` in as ``name`` after the named stages; returns the pipeline for chaining."""
        after = (after,) if isinstance(after, str) else tuple(after)
        if not isinstance(stage, Stage):
            raise TypeError(f"Stage {name!r} must be a ragpress Stage, got {type(stage).__name__}.")
        if name in self.nodes:
            raise ValueError(f"A stage named {name!r} is already in the pipeline.")
        missing = [a for a in after if a not in self.nodes]
        if missing:
            raise ValueError(f"Stage {name!r} is wired after {missing}, which the pipeline does not have (yet): add those first.")
        ports = Ports.of(stage)
        self._check_wiring(name, stage, ports, after)
        self.nodes[name] = Node(name, stage, after, ports)
        return self

    def _check_wiring(self, name: str, stage: Stage, ports: Ports, after: tuple[str, ...]) -> None:
        label = f"{name!r} ({type(stage).__name__})"
        if ports.variadic is None and len(after) != len(ports.inputs):
            wanted = ", ".join(_type_name(t) for t in ports.inputs) or "only the query"
            raise TypeError(f"Stage {label} takes {wanted} but is wired after {len(after)} stage(s): {list(after)}.")
        if ports.variadic is not None and not after:
            raise TypeError(f"Stage {label} merges the outputs of other stages: wire it after at least one.")
        expected = list(ports.inputs) + [ports.variadic] * (len(after) - len(ports.inputs))
        for upstream, wanted in zip(after, expected):
            given = self.nodes[upstream].ports.output
            if given != wanted:
                raise TypeError(
                    f"Stage {label} takes {_type_name(wanted)} but {upstream!r} "
                    f"({type(self.nodes[upstream].stage).__name__}) gives {_type_name(given)}."
                    + _hint(given, wanted)
                )

    @property
    def output_node(self) -> Node:
        used = {a for node in self.nodes.values() for a in node.after}
        sinks = [node for node in self.nodes.values() if node.name not in used]
        if len(sinks) != 1:
            raise ValueError(f"A pipeline needs exactly one final stage, found {[s.name for s in sinks] or 'none'}.")
        return sinks[0]

    def index(self, documents: list[Document], cache: str | Path | None = None) -> list[Chunk]:
        """Chunk ``documents`` with the pipeline's chunker and index every retriever on the chunks.

        With ``cache``, each retriever's index is saved in a folder under it named by a hash of the
        documents and of the chunker's and retriever's settings, and loaded from there next time."""
        if self.chunker is None:
            raise ValueError("This pipeline has no chunker: pass Pipeline(chunker=...) or index each retriever yourself.")
        documents = check_documents(documents)
        retrievers = {n.name: n.stage for n in self.nodes.values() if isinstance(n.stage, Retriever)}
        if not retrievers:
            raise ValueError("This pipeline has no retriever to index: add one before calling index().")
        folders = {name: self._cache_folder(cache, documents, r) for name, r in retrievers.items()} if cache else {}
        chunks = None
        for name, retriever in retrievers.items():
            folder = folders.get(name)
            if folder is not None and (folder / "stage.json").exists():
                try:
                    retriever.restore(folder)
                    check_provenance(retriever.chunks, documents)
                    chunks = retriever.chunks
                    continue
                except ValueError as error:  # a cache that does not match: build it again
                    warnings.warn(f"Rebuilding the cached index of {name!r}: {error}", stacklevel=2)
            chunks = chunks or self.chunker.run(documents)
            retriever.index(chunks)
            if folder is not None:
                retriever.save(folder)
        self.documents = {d.id: d for d in documents}
        return chunks

    def _cache_folder(self, cache: str | Path, documents: list[Document], retriever: Retriever) -> Path:
        digest = hashlib.sha256(json.dumps([self.chunker.to_dict(), retriever.to_dict()], sort_keys=True).encode())
        for doc in documents:
            digest.update(f"{len(doc.id)}:{doc.id}{len(doc.text)}:".encode("utf-8", "surrogatepass") + doc.text.encode("utf-8", "surrogatepass"))
        return Path(cache) / f"{type(retriever).__name__}-{digest.hexdigest()[:16]}"

    def run(self, query: str) -> Result:
        return self.run_batch([query])[0]

    def run_batch(self, queries: list[str]) -> list[Result]:
        """Run every stage over all ``queries``, each stage once for the whole batch (:meth:`Stage.run_batch`).
        Each result's trace gives every stage's time as the batch's share per query; models loaded on
        first use are timed on their own (:attr:`Result.loads`), not charged to the stage that asked."""
        if isinstance(queries, str):
            raise TypeError("run_batch takes a list of queries; use run() for one.")
        queries = [check_query(q) for q in queries]
        if not queries:
            return []
        final = self.output_node.name
        columns: dict[str, list[Any]] = {}
        traces: list[list[StageTrace]] = [[] for _ in queries]
        with timing_loads() as loads:
            for node in self.nodes.values():
                upstream = [columns[a] for a in node.after]
                args = ([queries] if node.ports.wants_query else []) + upstream
                loaded, start = sum(load.seconds for load in loads), time.perf_counter()
                outputs = node.stage.run_batch(*args)
                loading = sum(load.seconds for load in loads) - loaded  # a model loaded on first use is not the stage's work
                share = max(0.0, time.perf_counter() - start - loading) / len(queries)
                columns[node.name] = outputs
                for i, output in enumerate(outputs):
                    inputs = [column[i] for column in upstream]
                    traces[i].append(stage_trace(node.name, node.stage, share, inputs, output))
        return [
            Result(q, columns[final][i], {name: column[i] for name, column in columns.items()}, tuple(traces[i]), tuple(loads))
            for i, q in enumerate(queries)
        ]

    def stream(self, query: str) -> Iterator[str]:
        """Run every stage before the final one, then yield the final generator's text as it is
        generated. No trace is kept; use :meth:`run` for that."""
        return self.start_stream(query)[1]

    def start_stream(self, query: str) -> tuple[list[Any], Iterator[str]]:
        """:meth:`stream`, with what the final generator was given (its inputs after the query: for
        a generator, ``[context]``, whose pieces are the sources), for callers that show sources
        while the answer streams."""
        final = self.output_node
        if not callable(getattr(final.stage, "stream", None)):
            raise TypeError(
                f"Only a pipeline that ends in a generator can stream; its final stage {final.name!r} "
                f"({type(final.stage).__name__}) gives {_type_name(final.ports.output)}. Use run() instead."
            )
        head = Pipeline(self.chunker)
        head.nodes = {name: node for name, node in self.nodes.items() if name != final.name}
        outputs = head.run_batch([query])[0].outputs if head.nodes else {}
        inputs = [outputs[a] for a in final.after]
        return inputs, final.stage.stream(*([check_query(query)] if final.ports.wants_query else []), *inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunker": self.chunker.to_dict() if self.chunker else None,
            "stages": [{"name": n.name, "after": list(n.after), **n.stage.to_dict()} for n in self.nodes.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], allow_external: bool = False, allow: Iterable[str] = ()) -> Pipeline:
        """A pipeline from :meth:`to_dict`, treated as untrusted (see :meth:`Stage.from_dict`): ``allow``
        names the settings that name code, hosts or secrets which this file may set."""
        stages = data.get("stages", []) if isinstance(data, dict) else None
        if not isinstance(stages, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in stages):
            raise ValueError("A pipeline file is a mapping with 'chunker' and 'stages', a list of {name, after, type, settings}.")
        allow = set(allow)
        chunker = Stage.from_dict(data["chunker"], allow_external, allow) if data.get("chunker") else None
        pipeline = cls(chunker)
        for entry in stages:
            after = entry.get("after") or []
            if not isinstance(after, (str, list)) or not all(isinstance(a, str) for a in ([after] if isinstance(after, str) else after)):
                raise ValueError(f"Stage {entry['name']!r}: 'after' must name stages, got {after!r}.")
            pipeline.add(entry["name"], Stage.from_dict(entry, allow_external, allow), after)
        return pipeline

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, allow_external: bool = False, allow: Iterable[str] = ()) -> Pipeline:
        return cls.from_dict(read_yaml(text), allow_external, allow)

    def save(self, path: str | Path) -> None:
        """Save the graph and settings (not the indexes: retrievers save those themselves)."""
        Path(path).write_text(self.to_yaml())

    @classmethod
    def load(cls, path: str | Path, allow_external: bool = False, allow: Iterable[str] = ()) -> Pipeline:
        """A pipeline saved by :meth:`save`, or shared by someone else: see :meth:`from_dict`."""
        return cls.from_yaml(Path(path).read_text(), allow_external, allow)

    def to_networkx(self):
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_node("query", kind="input")
        for node in self.nodes.values():
            graph.add_node(node.name, kind=node.stage.kind, type=type(node.stage).__name__)
            for upstream in node.after or ("query",):
                graph.add_edge(upstream, node.name)
        return graph


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", None) if not typing.get_args(t) else str(t).replace("ragpress.core.types.", "")


def _hint(given: Any, wanted: Any) -> str:
    if given == list[Chunk] and wanted == Context:
        return " Put a compressor (e.g. BudgetPacker) between them."
    if given == Context and wanted == list[Chunk]:
        return " A compressor's Context goes to a generator; retrievers and rerankers come before it."
    return ""
