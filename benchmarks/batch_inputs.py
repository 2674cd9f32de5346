"""Inputs of ``benchmarks/batch_throughput.py``, built where spaCy and gensim are installed (the GPU
machine has neither): Wikipedia articles and Paul Graham essays from :mod:`ragpress.corpora`, split
into sentences by ragpress's splitter (the official Meta-Chunking code gets the same sentences,
stripped), and LongCodeZip tasks on standard-library modules (``benchmarks.longcodezip.build_task``).

    python -m benchmarks.batch_inputs .device/bench/inputs.json.gz [--documents 120 --sentences 40 --files 120]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import sysconfig
from pathlib import Path

from benchmarks.longcodezip import build_task
from ragpress.chunkers.sentence import split_sentences
from ragpress.corpora import documents as corpus_documents
from ragpress.models import load_tokenizer


def documents(count: int, most_sentences: int) -> list[list[str]]:
    """The first ``most_sentences`` stripped sentences of each of ``count`` documents (articles first)."""
    out = []
    docs = corpus_documents()
    for doc in sorted(docs, key=lambda d: d["source"] != "wikipedia"):
        sentences = [doc["text"][a:b].strip() for a, b in split_sentences(doc["text"])][:most_sentences]
        if len(sentences) >= 8:
            out.append(sentences)
        if len(out) == count:
            break
    return out


def stdlib_modules() -> list[Path]:
    """The standard library's top-level modules (sorted), then its packages' modules (sorted), tests
    and bundled third-party code left out: more candidates than the top level's 60 of the right size,
    for a benchmark that keeps only the files its rule admits (``benchmarks.longcodezip.select_files``)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "idlelib", "lib2to3", "turtledemo", "site-packages"}
    return sorted(root.glob("*.py")) + sorted(p for p in root.glob("*/*.py") if not skip & set(p.relative_to(root).parts))


def code_tasks(count: int, low: int = 400, high: int = 6000) -> list[dict]:
    """Modules of ``low``-``high`` tokens, each with its first documented top-level function removed."""
    tokenizer, tasks, root = load_tokenizer("smollm2-135m"), [], Path(sysconfig.get_paths()["stdlib"])
    for path in stdlib_modules():
        try:
            source = path.read_text()
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError):
            continue
        names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and ast.get_docstring(n) and len(n.body) > 1]
        if not names or not low <= len(tokenizer(source)["input_ids"]) <= high:
            continue
        module = path.relative_to(root).with_suffix("").as_posix()  # "email/utils" for a package's module
        code, instruction = build_task(module, names[0])
        tasks.append({"module": module, "function": names[0], "code": code, "instruction": instruction})
        if len(tasks) == count:
            break
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--documents", type=int, default=120)
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--files", type=int, default=120, help="candidate files (batch_throughput keeps those its rule admits)")
    args = parser.parse_args()
    data = {"documents": documents(args.documents, args.sentences), "code": code_tasks(args.files)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out, "wt") as f:
        json.dump(data, f)
    print(f"{len(data['documents'])} documents, {sum(map(len, data['documents']))} sentences; {len(data['code'])} code files")


if __name__ == "__main__":
    main()
