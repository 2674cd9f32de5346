"""Corpus scale (issue 17): documents/s of ``ragpress.scale.IndexJob`` with 1 and 2 Ray workers
against the in-process ``Pipeline.index`` on the same documents and pipeline (SentenceChunker
paragraphs of at most 128 tokens, MiniLM into LanceDB), then query latency and recall@10 of the
IVF-PQ index against exact search on synthetic 384-d chunks (``benchmarks.lancedb_store``'s
measurement, at ``--ann-rows``).

Documents are the distinct docstrings (80+ characters) of the standard library's functions and
classes (``ragpress.corpora.stdlib_docstrings``), one a document, written as 8 JSON-lines files
for the Ray jobs. Every run starts cold (model loading included): Ray's start is timed apart,
each job's time includes starting its actors and loading their models, as the in-process run
includes loading the model once; "chunks/s after it" is the rate between a job's first and last
write to the table (its actors running, their start excluded: ``IndexReport.steady_rate``).

    python -m benchmarks.scale_index [--documents 600] [--workers 1 2] [--ann-rows 300000] [--nprobes 20 60]
    python -m benchmarks.scale_index --documents 5000 --copies 40 --workers 1 2 --chunk-workers 12 --no-in-process --ann-rows 0
        (two GPUs: enough chunking actors to keep both embedding GPUs busy)

``--embed-rate MODEL_DIR --texts FILE`` measures MiniLM's embedding rate on one GPU instead
(sentence-transformers when installed, else transformers' AutoModel with mean pooling, fp16),
over the chunk texts in FILE (JSON lines of strings, written by ``--write-texts FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks._common import print_table, timed
from ragpress.core.types import Document

PIECES = 8


def docstring_documents(limit: int, copies: int = 1) -> list[Document]:
    """Up to ``limit`` distinct standard-library docstrings of 80+ characters, one document each
    (1,944 with CPython 3.11's library); ``copies`` repeats them under new ids, for a corpus large
    enough that a job's start does not dominate its time (the work per chunk is the same)."""
    from ragpress.corpora import stdlib_docstrings

    texts = list(dict.fromkeys(t for _, docstrings in stdlib_docstrings() for t in docstrings[1:] if len(t) >= 80))[:limit]
    return [Document(text, id=f"doc{i}" + (f"-{k}" if k else "")) for k in range(copies) for i, text in enumerate(texts)]


def pipeline():
    from ragpress.chunkers.sentence import SentenceChunker
    from ragpress.pipelines.graph import Pipeline
    from ragpress.retrievers.lancedb import LanceDBRetriever

    return Pipeline(SentenceChunker(max_tokens=128)).add("store", LanceDBRetriever(top_k=10))


def throughput(documents: list[Document], workers: list[int], folder: Path, in_process: bool = True,
               chunk_workers: int | None = None) -> list[tuple]:
    import torch

    from ragpress.scale import IndexJob
    from ragpress.scale.job import start_ray

    rows, expected = [], None
    if in_process:
        rag = pipeline()
        rag.nodes["store"].stage.uri = str(folder / "in_process")
        seconds, chunks = timed(rag.index, documents)
        threads = f"torch {torch.get_num_threads()} thread{'s' * (torch.get_num_threads() > 1)}"
        expected = (len(documents), len(chunks))
        rows.append((f"Pipeline.index, in process ({threads})", len(documents), len(chunks), f"{seconds:.1f}",
                     f"{len(documents) / seconds:.1f}", f"{len(chunks) / seconds:.1f}", "-", "-"))
    files = []
    for k in range(PIECES):
        files.append(folder / f"docs{k}.jsonl")
        files[-1].write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in documents[k::PIECES]))
    if workers:
        started, _ = timed(start_ray, max(workers) + (chunk_workers or max(workers)), 1.0)  # chunking and embedding actors
        print(f"Ray started in process in {started:.1f} s", flush=True)
    for n in workers:
        report = IndexJob(store=str(folder / f"ray{n}"), workers=n, chunk_workers=chunk_workers).run(pipeline(), [str(folder / "docs*.jsonl")])
        expected = expected or (report.documents, report.chunks)
        assert (report.documents, report.chunks) == expected, report
        chunkers = f", {chunk_workers} chunking" if chunk_workers else ""
        rows.append((f"IndexJob, {n} Ray worker{'s' * (n > 1)}{chunkers}", report.documents, report.chunks, f"{report.seconds:.1f}",
                     f"{report.documents / report.seconds:.1f}", f"{report.chunks / report.seconds:.1f}",
                     f"{report.first_write:.1f}", f"{report.steady_rate:.1f}"))
    return rows


def write_texts(path: str, limit: int) -> None:
    """The chunk texts of the benchmark's documents (the CPU runs' chunks), for ``--embed-rate``."""
    chunks = pipeline().chunker.run(docstring_documents(limit))
    Path(path).write_text("".join(json.dumps(c.text) + "\n" for c in chunks))
    print(f"{path}: {len(chunks)} chunk texts")


def embed_rate(model_dir: str, texts_path: str, total: int, batch: int) -> None:
    """Chunks/s and tokens/s of MiniLM in fp16 on this machine's GPU, after a warm-up, for the chunk
    texts as written and for chunks of 4 texts joined (about the 256-token window MiniLM reads)."""
    import torch

    chunks = [json.loads(line) for line in Path(texts_path).read_text().splitlines()]
    rows = []
    for join in (1, 4):
        texts = ["\n\n".join(chunks[i:i + join]) for i in range(0, len(chunks), join)]
        texts = (texts * (total // len(texts) + 1))[:total]
        encode, tokens, how = encoder(model_dir, texts, batch)
        encode(texts[: batch * 4])  # warm-up: kernels, allocator
        torch.cuda.synchronize()
        start = time.perf_counter()
        encode(texts)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append((torch.cuda.get_device_name(), how, len(texts), f"{tokens / len(texts):.0f}", batch, f"{seconds:.2f}",
                     f"{len(texts) / seconds:,.0f}", f"{tokens / seconds:,.0f}"))
    print_table(["GPU", "encoder", "chunks", "tokens/chunk", "batch", "s", "chunks/s", "tokens/s"], rows, "llrrrrrr")


def encoder(model_dir: str, texts: list[str], batch: int):
    """``(encode, tokens in texts, name)``: sentence-transformers in fp16 where installed, else by hand."""
    import torch

    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return mean_pooling_encoder(model_dir, texts, batch)
    model = SentenceTransformer(model_dir, device="cuda", model_kwargs={"torch_dtype": torch.float16})
    tokens = sum(len(x) for x in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"])
    return lambda xs: model.encode(xs, batch_size=batch, convert_to_tensor=True, normalize_embeddings=True), tokens, "sentence-transformers"


def mean_pooling_encoder(model_dir: str, texts: list[str], batch: int):
    """sentence-transformers' MiniLM recipe by hand: 256-token window, mean over the mask, unit length."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir, dtype=torch.float16).cuda().eval()

    @torch.inference_mode()
    def encode(xs: list[str]) -> torch.Tensor:
        out = []
        for i in range(0, len(xs), batch):
            inputs = tokenizer(xs[i:i + batch], padding=True, truncation=True, max_length=256, return_tensors="pt").to("cuda")
            hidden, mask = model(**inputs).last_hidden_state, inputs["attention_mask"].unsqueeze(-1).to(torch.float16)
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
        return torch.cat(out)

    tokens = sum(len(x) for x in tokenizer(texts, truncation=True, max_length=256)["input_ids"])
    return encode, tokens, "transformers mean pooling"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=600, help="0 skips the throughput measurement")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="none: only the in-process run")
    parser.add_argument("--copies", type=int, default=1, help="the documents repeated under new ids, for a larger corpus")
    parser.add_argument("--chunk-workers", type=int, help="chunking actors of the Ray jobs (default: as many as --workers)")
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process Pipeline.index run")
    parser.add_argument("--ann-rows", type=int, default=300_000, help="0 skips the ANN measurement")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[20], help="IVF partitions each ANN search probes: a row for each")
    parser.add_argument("--embed-rate", metavar="MODEL_DIR")
    parser.add_argument("--texts", metavar="FILE")
    parser.add_argument("--write-texts", metavar="FILE")
    parser.add_argument("--total", type=int, default=200_000, help="chunks embedded by --embed-rate")
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()
    if args.embed_rate:
        return embed_rate(args.embed_rate, args.texts, args.total, args.batch)
    if args.write_texts:
        return write_texts(args.write_texts, args.documents)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    if args.documents:
        with tempfile.TemporaryDirectory() as folder:
            rows = throughput(docstring_documents(args.documents, args.copies), args.workers, Path(folder), not args.no_in_process,
                              args.chunk_workers)
        print_table(["run", "documents", "chunks", "s", "documents/s", "chunks/s", "first write s", "chunks/s after it"], rows, "lrrrrrrr")
    if args.ann_rows:
        from benchmarks.lancedb_store import HEADER, measure

        with tempfile.TemporaryDirectory() as folder:
            print_table(HEADER, measure(args.ann_rows, args.queries, folder, args.nprobes), "r" * len(HEADER))
            sizes = {table.name: sum(f.stat().st_size for f in table.rglob("*") if f.is_file()) for table in Path(folder).glob("*.lance")}
            print("on disk, bytes a row: " + ", ".join(f"{name} {size / args.ann_rows:,.0f}" for name, size in sorted(sizes.items())))
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)


if __name__ == "__main__":
    main()
