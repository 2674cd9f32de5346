"""A pipeline's indexing half as a Ray Data job: read files -> chunk -> embed -> LanceDB table.

Reading runs as Ray tasks, a file at a time; chunking and embedding run in pools of ``workers``
actors each (:mod:`ragpress.scale.workers`), embedding on a GPU per actor where the cluster has
GPUs; the driver streams the embedded rows into the table through the :class:`Ledger`, so memory
holds a few batches, not the corpus. Ray Data shows each step's progress while it runs. Ray starts
in this process unless ``RAY_ADDRESS`` names a cluster (or Ray is already started)."""

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

from ragpress.pipelines.graph import Pipeline
from ragpress.retrievers.lancedb import LanceDBRetriever
from ragpress.scale.embed import EmbedWorker
from ragpress.scale.ledger import Ledger
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

    def __str__(self) -> str:
        text = (f"Indexed {self.documents} documents from {self.files} files as {self.chunks} new chunks in {self.seconds:.1f} s; "
                f"{self.skipped} already stored; {len(self.problems)} bad lines skipped.")
        return "\n".join([text, *self.problems[:20], *(["..."] if len(self.problems) > 20 else [])])


@dataclasses.dataclass
class IndexJob:
    """Settings of the job. ``store`` is the LanceDB folder (or bucket URI): the caller's choice,
    never a pipeline file's, as for :class:`LanceDBRetriever`'s ``uri``."""

    store: str
    workers: int = 1  # actors per step (chunking, embedding)
    chunk_batch: int = 16  # documents per chunking call
    embed_batch: int = 256  # chunks per embedding call
    read_batch: int = 256  # documents per batch out of a reader
    write_batch: int = 2048  # chunks per append to the table
    cpus: float = 1.0  # CPUs each actor asks Ray for (each reader half that), or an even share on a cluster with fewer
    embed_gpus: float | None = None  # GPUs per embedding actor; None: 1 where the cluster has GPUs, else 0
    on_bad_input: Literal["skip", "fail"] = "skip"

    def run(self, pipeline: Pipeline, inputs: Sequence[str]) -> IndexReport:
        """Index the documents of the files ``inputs`` (paths or globs) into the store, skipping those
        stored by an earlier run with the same text and settings."""
        started = time.perf_counter()
        if pipeline.chunker is None:
            raise ValueError("This pipeline has no chunker: a scale job chunks documents with the pipeline's chunker.")
        files, store = expand(inputs), store_of(pipeline, self.store)
        start_ray(self.workers, self.cpus)
        ledger, tally = Ledger(store), ray.remote(Tally).remote()
        settings = hashlib.sha256(json.dumps([pipeline.chunker.to_dict(), store.model]).encode()).hexdigest()
        cpus = min(self.cpus, ray.cluster_resources().get("CPU", 1) / (2 * self.workers + 1))  # a small cluster: an even share
        gpus = self.embed_gpus if self.embed_gpus is not None else float(ray.cluster_resources().get("GPU", 0) > 0)
        pool = ray.data.ActorPoolStrategy(size=self.workers)
        data = ray.data.from_items([{"path": path} for path in files], override_num_blocks=len(files))
        data = data.map_batches(read_documents, batch_size=1, num_cpus=cpus / 2, fn_kwargs=dict(
            settings=settings, known=ledger.keys(), fail=self.on_bad_input == "fail", tally=tally, batch_size=self.read_batch))
        data = data.map_batches(ChunkWorker, fn_constructor_args=(fresh(pipeline.chunker),), batch_size=self.chunk_batch,
                                compute=pool, num_cpus=cpus)
        data = data.map_batches(EmbedWorker, fn_constructor_args=(fresh(store),), batch_size=self.embed_batch, compute=pool,
                                num_cpus=cpus, num_gpus=gpus, batch_format="pyarrow")
        chunks = 0
        try:
            for batch in data.iter_batches(batch_size=self.write_batch, batch_format="pyarrow"):
                chunks += ledger.write(batch)
        except Exception as error:
            raise bad_input(error) or error
        if ledger.unfinished():
            raise RuntimeError(f"The job ended with documents partly stored: {ledger.unfinished()[:5]}; run it again to finish them.")
        if chunks:
            store.grow_index()
            store.open_table().optimize()  # fold the appended fragments (and any rows beside the ANN index) in
        skipped, problems = ray.get(tally.totals.remote())
        return IndexReport(len(files), ledger.documents, skipped, chunks, tuple(problems), time.perf_counter() - started)


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


def start_ray(workers: int, cpus: float) -> None:
    """Connect to the cluster at ``RAY_ADDRESS``, or start Ray in this process with as many CPUs as the
    job's actors ask for plus one for reading (at least 2), no dashboard."""
    if ray.is_initialized():
        return
    with warnings.catch_warnings():  # Ray's processes fork and exec at once, the case lancedb's fork warning does not fear
        warnings.filterwarnings("ignore", "lancedb fork support", RuntimeWarning)
        if os.environ.get("RAY_ADDRESS"):
            ray.init()
        else:
            ray.init(num_cpus=max(2, math.ceil(2 * workers * cpus + 1)), include_dashboard=False)


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
