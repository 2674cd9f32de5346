"""ragpress.scale: a Ray Data job that chunks, embeds and stores a corpus in LanceDB, once per chunk,
through worker crashes, failed runs and reruns, with bad input named by file and line. One Ray
session serves the module (ray.init(num_cpus=2), as the issue asks of tests)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import shutil
import sys
from collections import Counter

import pytest

pytest.importorskip("ray")
pytest.importorskip("lancedb")

import cloudpickle
import ray
import torch
import yaml

from ragpress import Pipeline
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.cli import main
from ragpress.compressors.compllm import CompLLM, split_segments
from ragpress.core import Document, check_provenance
from ragpress.models import load_tokenizer
from ragpress.retrievers.lancedb import LanceDBRetriever
from ragpress.scale import IndexJob

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers rebuild this module's test chunker by value
QUERIES = ["join path components", "sort a list in place", "compile a regular expression", "read a file as text",
           "an iterator over pairs", "remove indentation from text", "format a string", "environment variables",
           "cache the results of a function", "the signature of a callable"]


def stdlib_documents() -> list[Document]:
    """330 real texts: the distinct docstrings of public functions and classes in ten standard modules."""
    docs, seen = {}, set()
    for module in map(importlib.import_module, ("json", "os", "collections", "itertools", "functools", "re", "pathlib", "textwrap", "string", "inspect")):
        for name, value in sorted(vars(module).items()):
            text = inspect.getdoc(value) if callable(value) and not name.startswith("_") else None
            if text and len(text) > 80 and text not in seen:
                seen.add(text)
                docs.setdefault(f"{module.__name__}.{name}", Document(text, id=f"{module.__name__}.{name}", metadata={"module": module.__name__}))
    return list(docs.values())[:330]


def write_lines(path, documents: list[Document]) -> None:
    path.write_text("".join(json.dumps({"id": d.id, "text": d.text, **d.metadata}) + "\n" for d in documents))


@dataclasses.dataclass
class FailOnce(SentenceChunker):
    """Fails once on document ``victim``: ``crash`` ends the worker's process (as a killed worker or
    a lost node would), else raises (as a bug would); ``marker`` is the file that says it happened."""

    victim: str = ""
    marker: str = ""
    crash: bool = True

    def chunk(self, document):
        if document.id == self.victim and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            if self.crash:
                os._exit(1)
            raise RuntimeError("a stage failed on one batch")
        return super().chunk(document)


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return stdlib_documents()


def pipeline(model: str, chunker: SentenceChunker | None = None) -> Pipeline:
    return Pipeline(chunker or SentenceChunker(max_tokens=64)).add("store", LanceDBRetriever(model=model, top_k=10))


def job(tmp_path, **settings) -> IndexJob:
    return IndexJob(store=str(tmp_path / "index.lance"), **settings)


def stored(tmp_path, model: str = "minilm-l6") -> LanceDBRetriever:
    return LanceDBRetriever(uri=str(tmp_path / "index.lance"), model=model, top_k=10)


def spans(chunks) -> list[tuple]:
    return sorted((c.doc_id, c.start, c.end) for c in chunks)


@pytest.fixture(scope="module")
def indexed(ray_session, documents, tmp_path_factory, tiny_embedder_path):
    """The documents in two files, indexed by one job with the tiny embedder: the folder and the report."""
    folder = tmp_path_factory.mktemp("indexed")
    write_lines(folder / "a.jsonl", documents[:200])
    write_lines(folder / "b.jsonl", documents[200:])
    return folder, job(folder, chunk_workers=2, write_batch=128).run(pipeline(tiny_embedder_path), [str(folder / "*.jsonl")])


def check_job_result(folder, report, rag: Pipeline, documents: list[Document]) -> None:
    """The job stored every chunk of the in-process chunker once, each an exact span of its source
    carrying its document's metadata, and ranks queries as an exact in-memory DenseRetriever does."""
    pytest.importorskip("faiss")
    from ragpress.retrievers.dense import DenseRetriever

    model, store = rag.nodes["store"].stage.model, stored(folder, rag.nodes["store"].stage.model)
    expected = rag.chunker.run(documents)
    assert (report.documents, report.chunks, report.problems) == (len(documents), len(expected), ())
    check_provenance(store.chunks, documents)
    assert spans(store.chunks) == spans(expected)
    modules = {d.id: d.metadata["module"] for d in documents}
    assert all(c.metadata["module"] == modules[c.doc_id] for c in store.chunks)
    assert {modules[h.doc_id] for h in store.run(QUERIES[0], where={"metadata": {"module": "json"}})} == {"json"}  # filterable
    exact = DenseRetriever(model=model, top_k=10, index_type="flat")
    exact.index(expected)
    repeated = {text for text, n in Counter(c.text for c in expected).items() if n > 1}  # equal scores: either may rank 10th
    ranked = lambda hits: sorted(c.text if c.text in repeated else f"{c.doc_id}:{c.start}:{c.end}" for c in hits)  # noqa: E731
    for query in QUERIES:
        assert ranked(store.run(query)) == ranked(exact.run(query)), query


def test_a_job_stores_each_chunk_once_exact_to_its_source_and_ranks_as_exact_dense(indexed, documents, tiny_embedder_path):
    check_job_result(*indexed, pipeline(tiny_embedder_path), documents)
    report = indexed[1]  # two chunking actors feeding one embedding actor, written 128 chunks at a time
    assert 0 < report.first_write < report.last_write <= report.seconds and 0 < report.first_chunks < report.chunks
    assert report.steady_rate == (report.chunks - report.first_chunks) / (report.last_write - report.first_write)


@pytest.mark.integration
def test_the_same_with_spacy_sentences_and_minilm(ray_session, documents, tmp_path):
    write_lines(tmp_path / "docs.jsonl", documents)
    rag = pipeline("minilm-l6", SentenceChunker(unit="sentence", max_tokens=64))
    check_job_result(tmp_path, job(tmp_path).run(rag, [str(tmp_path / "docs.jsonl")]), rag, documents)


def test_a_killed_worker_still_leaves_every_chunk_stored_exactly_once(ray_session, documents, tmp_path, tiny_embedder_path):
    docs = documents[:60]
    for i in range(0, 60, 20):
        write_lines(tmp_path / f"part{i}.jsonl", docs[i:i + 20])
    chunker = FailOnce(max_tokens=64, victim=docs[45].id, marker=str(tmp_path / "failed"))
    report = job(tmp_path, chunk_batch=4, embed_batch=16, write_batch=16).run(pipeline(tiny_embedder_path, chunker), [str(tmp_path / "*.jsonl")])
    assert os.path.exists(tmp_path / "failed") and report.documents == len(docs)  # the worker died; Ray ran its batch again
    ids = stored(tmp_path).open_table().to_arrow()["chunk_id"].to_pylist()
    assert len(ids) == len(set(ids))
    assert spans(stored(tmp_path).chunks) == spans(SentenceChunker(max_tokens=64).run(docs))


def test_a_rerun_adds_nothing_and_new_or_changed_documents_are_all_it_processes(indexed, documents, tmp_path, tiny_embedder_path):
    shutil.copytree(indexed[0], tmp_path, dirs_exist_ok=True)
    rag, files = pipeline(tiny_embedder_path), [str(tmp_path / "*.jsonl")]
    version = stored(tmp_path).open_table().version
    again = job(tmp_path).run(rag, files)
    assert (again.documents, again.chunks, again.skipped) == (0, 0, len(documents))
    assert stored(tmp_path).open_table().version == version  # not a row written, deleted or compacted
    new = [Document(d.text + " (a copy)", id=f"new-{d.id}", metadata=d.metadata) for d in documents[:10]]
    changed = Document("The json module's dumps, rewritten. Serialize obj.", id=documents[0].id, metadata=documents[0].metadata)
    write_lines(tmp_path / "c.jsonl", new)
    write_lines(tmp_path / "a.jsonl", [changed] + documents[1:200])
    report = job(tmp_path).run(rag, files)
    assert (report.documents, report.skipped) == (11, len(documents) - 1)
    everything = [changed] + documents[1:] + new
    check_provenance(stored(tmp_path).chunks, everything)  # the old text of documents[0] is gone
    assert spans(stored(tmp_path).chunks) == spans(rag.chunker.run(everything))


def test_the_command_line_names_bad_lines_by_file_and_line_and_skips_them_or_fails(ray_session, documents, tmp_path, tiny_embedder_path, capsys):
    docs = documents[:20]
    good = "".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in docs[:10]).encode()
    (tmp_path / "mixed.jsonl").write_bytes(good + b"{not json\n" + b'{"id": "no-text"}\n' + b'{"text": "caf\xe9"}\n' + b"\n"
                                            + json.dumps({"id": docs[10].id, "text": docs[10].text}).encode() + b"\n")
    write_lines(tmp_path / "clean.jsonl", docs[11:])
    pipeline(tiny_embedder_path).save(tmp_path / "rag.yaml")
    argv = ["index", "--pipeline", str(tmp_path / "rag.yaml"), "--input", str(tmp_path / "*.jsonl"), "--store", str(tmp_path / "index.lance")]
    assert main([*argv, "--on-bad-input", "fail"]) == 2
    assert f"{tmp_path}/mixed.jsonl:11: not JSON" in capsys.readouterr().err
    assert main(argv) == 0
    out = capsys.readouterr().out.replace(f"{tmp_path}/", "")
    assert out.startswith(f"Indexed {len(docs)} documents from 2 files as ")  # nothing else lost: line 15, after the bad ones, too
    assert out.splitlines()[1:] == [
        "mixed.jsonl:11: not JSON (Expecting property name enclosed in double quotes at column 2)",
        "mixed.jsonl:12: row without text: each row needs a 'text' string, got \"{'id': 'no-text'}\"",
        "mixed.jsonl:13: not UTF-8 (byte 13 of the line is b'\\xe9')",
    ]
    assert spans(stored(tmp_path).chunks) == spans(SentenceChunker(max_tokens=64).run(docs))


def test_the_store_is_the_callers_choice_never_the_pipeline_files(tmp_path, tiny_embedder_path, capsys):
    data = pipeline(tiny_embedder_path).to_dict()
    data["stages"][0]["settings"]["uri"] = str(tmp_path / "elsewhere")
    (tmp_path / "planted.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "docs.jsonl").write_text('{"text": "A document."}\n')
    argv = ["index", "--pipeline", str(tmp_path / "planted.yaml"), "--input", str(tmp_path / "docs.jsonl"), "--store", str(tmp_path / "index.lance")]
    assert main(argv) == 2
    assert "sets LanceDBRetriever.uri" in capsys.readouterr().err and not (tmp_path / "elsewhere").exists()
    data["stages"][0]["settings"].pop("uri")
    (tmp_path / "rag.yaml").write_text(yaml.safe_dump(data))
    assert main([*argv[:2], str(tmp_path / "rag.yaml"), "--input", str(tmp_path / "nowhere/*.jsonl"), *argv[5:]]) == 2
    assert "No file matches" in capsys.readouterr().err


def test_a_job_precomputes_the_segment_cache_that_compressing_a_stored_chunk_then_hits(ray_session, documents, tmp_path, tiny_embedder_path,
                                                                                       tiny_lm_path, capsys):
    write_lines(tmp_path / "a.jsonl", documents[:10])
    compllm = lambda **cache: CompLLM(decoder=tiny_lm_path, checkpoint="untrained", device="cpu", **cache)  # noqa: E731
    segments = tmp_path / "segments.safetensors"
    pipeline(tiny_embedder_path).add("compress", compllm(), after="store").save(tmp_path / "rag.yaml")
    argv = ["index", "--pipeline", str(tmp_path / "rag.yaml"), "--input", str(tmp_path / "*.jsonl"), "--store", str(tmp_path / "index.lance")]
    assert main([*argv, "--segments", str(segments)]) == 0  # the pipeline's compressor, the caller's file
    tokenizer, chunks = load_tokenizer(tiny_lm_path), stored(tmp_path, tiny_embedder_path).chunks
    texts = {c.text[s:e] for c in chunks for s, e in split_segments(c.text, tokenizer, 20)}
    assert f" {len(texts)} new segments cached." in capsys.readouterr().out
    reader = compllm(cache=str(segments))
    context = reader.run("What does json.dumps do?", chunks)
    assert context.metadata["encoder_calls"] == 0 and reader.segment_cache.misses == 0  # every segment from the job's cache
    assert len(reader.segment_cache) == len(texts) and not segments.with_name(segments.name + ".parts").exists()
    assert torch.allclose(context.embeddings, compllm().run("q", chunks).embeddings, atol=1e-5)  # the rows compress computes
    cached = segments.read_bytes()
    rag = pipeline(tiny_embedder_path)
    again = job(tmp_path, precompute=compllm(cache=str(segments))).run(rag, [str(tmp_path / "*.jsonl")])  # the Python form
    assert (again.documents, again.chunks, again.segments) == (0, 0, 0) and segments.read_bytes() == cached  # a rerun adds nothing
    write_lines(tmp_path / "b.jsonl", documents[10:13])
    more = job(tmp_path, precompute=compllm(cache=str(segments))).run(rag, [str(tmp_path / "*.jsonl")])
    new = [c for c in stored(tmp_path, tiny_embedder_path).chunks if c.doc_id in {d.id for d in documents[10:13]}]
    new_texts = {c.text[s:e] for c in new for s, e in split_segments(c.text, tokenizer, 20)}
    assert (more.documents, more.segments) == (3, len(new_texts - texts))  # the new documents' segments, once
    assert compllm(cache=str(segments)).run("q", new).metadata["encoder_calls"] == 0
    with pytest.raises(ValueError, match="this pipeline has none"):
        job(tmp_path, segments=str(segments)).run(rag, [str(tmp_path / "*.jsonl")])
