"""Corpus scale: a declared pipeline's indexing half (chunker -> embedder) as a Ray Data job that
streams files into a LanceDB table, idempotently (optional extra ``ragpress[scale]``).

>>> from ragpress.scale import IndexJob
>>> report = IndexJob(store="./index.lance", workers=2).run(Pipeline.load("rag.yaml"), ["docs/*.jsonl"])
>>> LanceDBRetriever(uri="./index.lance").run("How does the with statement work?")

On the command line: ``ragpress index --pipeline rag.yaml --input 'docs/*.jsonl' --store ./index.lance``.
"""

from ragpress.scale.job import IndexJob, IndexReport, store_of
from ragpress.scale.sources import Problem
from ragpress.scale.workers import BadInputError

__all__ = ["BadInputError", "IndexJob", "IndexReport", "Problem", "store_of"]
