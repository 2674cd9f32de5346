"""A pipeline's indexing half as a Ray Data job: read files -> chunk -> embed -> LanceDB table.

Reading runs as Ray tasks, a file at a time; chunking and embedding run in pools of ``workers``
actors each (:mod:`ragpress.scale.workers`), embedding on a GPU per actor where the cluster has
GPUs; the driver streams the embedded rows into the table through the :class:`Ledger`, so memory
holds a few batches, not the corpus. With ``segments``, a third pool (on GPUs as embedding is)
precomputes a soft compressor's segment cache of every new chunk (:mod:`ragpress.scale.segments`).
Ray Data shows each step's progress while it runs. Ray starts in this process unless
``RAY_ADDRESS`` names a cluster (or Ray is already started)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Sequence
from typing import Literal

from ragpress.core.extras import require

require("ray", "lancedb", what="ragpress.scale")

import ray
import ray.data

from ragpress.compressors.base import SoftCompressor
from ragpress.pipelines.graph import Pipeline
from ragpress.retrievers.lancedb import LanceDBRetriever
from ragpress.scale.embed import EmbedWorker
from ragpress.scale.ledger import Ledger
from ragpress.scale.segments import SegmentWorker, SegmentWriter
from ragpress.scale.sources import expand
from ragpress.scale.workers import BadInputError, ChunkWorker, Tally, read_documents


@dataclasses.dataclass(frozen=True)
class IndexReport:
    files: int
    documents: int  # documents chunked, embedded and stored by this run
    skipped: int  # documents already stored with the same text and settings
    chunks: int  # chunks added to the table
    problems: tuple[str, ...]  # bad lines skipped, as "file:line: what is wrong"
    seconds: float
    segments: int = 0  # segments added to the segment cache (IndexJob.segments)
    first_write: float = 0.0  # seconds until the first rows reached the table (Ray, actors and models started)
    first_chunks: int = 0  # chunks in that first write
    last_write: float = 0.0  # seconds until the last rows did (the index is folded in after it)

    @property
    def steady_rate(self) -> float:
        """Chunks a second between the first and the last write: the job's rate once its actors run,
        without their start (0 when everything came in one write)."""
        return (self.chunks - self.first_chunks) / (self.last_write - self.first_write) if self.last_write > self.first_write else 0.0

    def __str__(self) -> str:
        text = (f"Indexed {self.documents} documents from {self.files} files as {self.chunks} new chunks in {self.seconds:.1f} s; "
                f"{self.skipped} already stored; {len(self.problems)} bad lines skipped."
                + (f" {self.segments} new segments cached." if self.segments else ""))
        return "\n".join([text, *self.problems[:20], *(["..."] if len(self.problems) > 20 else [])])


@dataclasses.dataclass
class IndexJob:
    """Settings of the job. ``store`` is the LanceDB folder (or bucket URI): the caller's choice,
    never a pipeline file's, as for :class:`LanceDBRetriever`'s ``uri``."""

    store: str
    workers: int = 1  # actors per step (chunking, embedding)
    chunk_workers: int | None = None  # chunking actors (CPU) when they should differ from workers (e.g. 8 CPUs to feed 2 GPUs)
    chunk_batch: int = 16  # documents per chunking call
    embed_batch: int = 256  # chunks per embedding call
    read_batch: int = 256  # documents per batch out of a reader
    write_batch: int = 2048  # chunks per append to the table
    cpus: float = 1.0  # CPUs each actor asks Ray for (each reader half that), or an even share on a cluster with fewer
    embed_gpus: float | None = None  # GPUs per embedding actor; None: 1 where the cluster has GPUs, else 0
    on_bad_input: Literal["skip", "fail"] = "skip"
    segments: str | None = None  # a segment cache file to fill with the soft compressor's rows of every new chunk
    precompute: SoftCompressor | None = None  # that compressor (CompLLM, ARC-Encoder; its cache file unless segments); None: the pipeline's

    def run(self, pipeline: Pipeline, inputs: Sequence[str]) -> IndexReport:
        """Index the documents of the files ``inputs`` (paths or globs) into the store, skipping those
        stored by an earlier run with the same text and settings."""
        started = time.perf_counter()
        if pipeline.chunker is None:
            raise ValueError("This pipeline has no chunker: a scale job chunks documents with the pipeline's chunker.")
        files, store, soft = expand(inputs), store_of(pipeline, self.store), self.soft_compressor(pipeline)
        pools = 2 if soft else 1  # model pools of `workers` actors each (embedding, segments) beside the chunking pool
        chunkers = self.chunk_workers or self.workers
        actors = self.workers * pools + chunkers
        start_ray(actors, self.cpus)
        ledger, tally = Ledger(store), ray.remote(Tally).remote()
        writer = SegmentWriter(soft, self.segments or soft.cache) if soft else None
        # what a document's chunks depend on: a run with other settings (or segments for another compressor) redoes it
        depends = [pipeline.chunker.to_dict(), store.model] + ([writer.identity] if writer else [])
        settings = hashlib.sha256(json.dumps(depends).encode()).hexdigest()
        cpus = min(self.cpus, ray.cluster_resources().get("CPU", 1) / (actors + 1))  # a small cluster: an even share
        gpus = self.embed_gpus if self.embed_gpus is not None else float(ray.cluster_resources().get("GPU", 0) > 0)
        pool = ray.data.ActorPoolStrategy(size=self.workers)
        data = ray.data.from_items([{"path": path} for path in files], override_num_blocks=len(files))
        data = data.map_batches(read_documents, batch_size=1, num_cpus=cpus / 2, fn_kwargs=dict(
            settings=settings, known=ledger.keys(), fail=self.on_bad_input == "fail", tally=tally, batch_size=self.read_batch))
        data = data.map_batches(ChunkWorker, fn_constructor_args=(fresh(pipeline.chunker),), batch_size=self.chunk_batch,
                                compute=ray.data.ActorPoolStrategy(size=chunkers), num_cpus=cpus)
        data = data.map_batches(EmbedWorker, fn_constructor_args=(fresh(store),), batch_size=self.embed_batch, compute=pool,
                                num_cpus=cpus, num_gpus=gpus, batch_format="pyarrow")
        if soft:
            data = data.map_batches(SegmentWorker, fn_constructor_args=(fresh(soft),), batch_size=self.embed_batch, compute=pool,
                                    num_cpus=cpus, num_gpus=gpus, batch_format="pyarrow")
        chunks, first, last = 0, (0.0, 0), 0.0
        try:
            for batch in data.iter_batches(batch_size=self.write_batch, batch_format="pyarrow"):
                chunks += ledger.write(writer.write(batch) if writer else batch)  # segments saved before the ledger records
                last = time.perf_counter() - started
                first = first if first[1] else (last, chunks)
        except Exception as error:
            raise bad_input(error) or error
        if ledger.unfinished():
            raise RuntimeError(f"The job ended with documents partly stored: {ledger.unfinished()[:5]}; run it again to finish them.")
        if chunks:
            store.grow_index()
            store.open_table().optimize()  # fold the appended fragments (and any rows beside the ANN index) in
        segments = writer.finish() if writer else 0
        skipped, problems = ray.get(tally.totals.remote())
        return IndexReport(len(files), ledger.documents, skipped, chunks, tuple(problems), time.perf_counter() - started, segments, *first, last)

    def soft_compressor(self, pipeline: Pipeline) -> SoftCompressor | None:
        """The compressor whose segments the job precomputes: ``precompute``, or with ``segments``
        alone the pipeline's soft compressor; None when the job precomputes nothing."""
        if self.precompute is None and self.segments is None:
            return None
        soft = self.precompute or next((n.stage for n in pipeline.nodes.values() if isinstance(n.stage, SoftCompressor)), None)
        if soft is None:
            raise ValueError("IndexJob(segments=...) precomputes a soft compressor's segments, and this pipeline has none: "
                             "add CompLLM or ArcEncoder to it, or pass IndexJob(precompute=CompLLM(...)).")
        if (self.segments or soft.cache) is None:
            raise ValueError(f"Where should the precomputed segments go? Pass IndexJob(segments='segments.safetensors') or set "
                             f"{type(soft).__name__}(cache='segments.safetensors'); then compress with that cache file.")
        return soft


def store_of(pipeline: Pipeline, uri: str) -> LanceDBRetriever:
    """The table the job fills: the pipeline's LanceDBRetriever at ``uri``, or else one that embeds
    with the model of its dense retriever."""
    stages = [node.stage for node in pipeline.nodes.values()]
    for stage in stages:
        if isinstance(stage, LanceDBRetriever):
            return dataclasses.replace(stage, uri=uri)
    for stage in stages:
        if stage.method == "dense":
            return LanceDBRetriever(uri=uri, model=stage.model, batch_size=stage.batch_size, device=stage.device)
    raise ValueError("This pipeline has no retriever that embeds (LanceDBRetriever or DenseRetriever): add one, whose model the job embeds with.")


def fresh(stage):
    """A copy of ``stage`` built from its settings alone (no loaded model travels to the workers)."""
    return type(stage)(**stage.settings())


def start_ray(actors: int, cpus: float) -> None:
    """Connect to the cluster at ``RAY_ADDRESS``, or start Ray in this process with as many CPUs as the
    job's ``actors`` ask for (``cpus`` each) plus one for reading (at least 2), no dashboard."""
    if ray.is_initialized():
        return
    with warnings.catch_warnings():  # Ray's processes fork and exec at once, the case lancedb's fork warning does not fear
        warnings.filterwarnings("ignore", "lancedb fork support", RuntimeWarning)
        if os.environ.get("RAY_ADDRESS"):
            ray.init()
        else:
            ray.init(num_cpus=max(2, math.ceil(actors * cpus + 1)), include_dashboard=False)


def bad_input(error: BaseException) -> BadInputError | None:
    """The :class:`BadInputError` behind a failed Ray job (Ray wraps it, traceback and all), as itself."""
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        if isinstance(error, BadInputError):
            found = re.search(r"BadInputError: (.+)", str(error))
            return BadInputError(found.group(1) if found else str(error))
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None
