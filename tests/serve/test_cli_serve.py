"""``ragpress serve`` from the command line: a pipeline file read as untrusted, documents from JSON
lines. (benchmarks/serve_load.py runs the command itself as a server process.)"""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ragpress.cli import main
from ragpress.serve import read_documents, running
from tests.serve.conftest import DOCS, pipeline

ROOT = Path(__file__).resolve().parents[2]


def write_documents(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": d.id, "text": d.text, "title": d.id.title()}) + "\n" for d in DOCS))
    return path


def test_serve_loads_the_file_indexes_the_documents_and_serves_it(tiny_lm_path, tmp_path, monkeypatch, capsys):
    """The command up to uvicorn, in this process: what it would serve is served on a free port instead."""
    answers = []

    def serve_here(app, host, port):
        assert (host, port) == ("127.0.0.1", 8123)
        with running(app) as url:
            answers.append(httpx.get(f"{url}/health").json())
            answers.append(httpx.post(f"{url}/query", json={"query": "global statement"}).json())

    monkeypatch.setattr("ragpress.serve.serve", serve_here)
    pipeline(tiny_lm_path).save(tmp_path / "rag.yaml")
    argv = ["serve", str(tmp_path / "rag.yaml"), "--index", str(write_documents(tmp_path / "docs.jsonl")), "--port", "8123"]
    assert main(argv) == 0
    health, body = answers
    assert health["documents"] == 3 and health["stages"] == ["bm25: BM25Retriever", "pack: BudgetPacker"]
    assert body["answer"] is None and body["sources"][0]["doc_id"] == "global"
    assert body["sources"][0]["text"] == DOCS[2].text[body["sources"][0]["start"] : body["sources"][0]["end"]]
    out = capsys.readouterr().out
    assert "Indexed 3 documents" in out and "Serving on http://127.0.0.1:8123" in out


def test_serve_refuses_a_file_naming_code_outside_ragpress_before_serving(tmp_path, capsys):
    (tmp_path / "evil.yaml").write_text("chunker: null\nstages:\n- name: x\n  after: []\n  type: os.system\n  settings: {}\n")
    assert main(["serve", str(tmp_path / "evil.yaml")]) == 2
    assert "Refusing to import stage type 'os.system'" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "evil.yaml"), "--allow-external"]) == 2  # the flag reaches Pipeline.load
    assert "'os.system' is not a ragpress Stage" in capsys.readouterr().err


def test_read_documents_keeps_ids_and_metadata_and_names_bad_lines(tmp_path):
    documents = read_documents(write_documents(tmp_path / "docs.jsonl"))
    assert documents == [type(d)(d.text, id=d.id, metadata={"title": d.id.title()}) for d in DOCS]
    with gzip.open(tmp_path / "docs.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "no id"}) + "\n")
    assert read_documents(tmp_path / "docs.jsonl.gz")[0].id  # a hash of the text
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, document 2: each line must be a JSON object with a 'text' string"):
        read_documents(tmp_path / "bad.jsonl")


def test_without_fastapi_serve_says_how_to_install_it():
    code = "import sys; sys.modules['fastapi'] = None; import ragpress.serve"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "pip install 'ragpress[serve]'" in done.stderr
