"""Serve a pipeline over HTTP: ``ragpress serve PIPELINE.yaml --index DOCS.jsonl``.

:func:`create_app` wraps an indexed :class:`~ragpress.pipelines.graph.Pipeline` in a FastAPI app
(``POST /query``, ``POST /compress``, ``GET /health``, OpenAPI docs at ``/docs``) that gathers
concurrent queries into ``run_batch`` calls; :func:`serve` runs it with uvicorn, :func:`running`
in a background thread; :func:`read_documents` reads the documents to index. Needs the ``serve``
extra: ``pip install 'ragpress[serve]'``.
"""

from ragpress.core.extras import require

require("fastapi", "uvicorn", what="ragpress serve")

from ragpress.serve.app import create_app
from ragpress.serve.documents import read_documents
from ragpress.serve.server import running, serve

__all__ = ["create_app", "read_documents", "running", "serve"]
