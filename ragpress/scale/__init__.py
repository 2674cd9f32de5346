"""Corpus scale: a declared pipeline's indexing half (chunker -> embedder) as a Ray Data job that
streams files into a LanceDB table, idempotently (optional extra ``ragpress[scale]``).

>>> from ragpress.scale import IndexJob
>>> report = IndexJob(store="./index.lance", workers=2).run(Pipeline.load("rag.yaml"), ["docs/*.jsonl"])
>>> LanceDBRetriever(uri="./index.lance").run("How does the with statement work?")

On the command line: ``ragpress index --pipeline rag.yaml --input 'docs/*.jsonl' --store ./index.lance``.

The names below load on first use: a Ray worker that imports one module of this package (a chunking
actor imports :mod:`ragpress.scale.workers`) should not pay for Ray Data's driver side and LanceDB.
"""

import importlib

HOMES = {"IndexJob": "job", "IndexReport": "job", "store_of": "job", "Problem": "sources", "BadInputError": "workers"}
__all__ = sorted(HOMES)


def __getattr__(name: str):
    if name not in HOMES:
        raise AttributeError(f"module 'ragpress.scale' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ragpress.scale.{HOMES[name]}"), name)
