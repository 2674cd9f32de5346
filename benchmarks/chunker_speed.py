"""ragpress's baseline chunkers against chonkie's (PyPI ``chonkie``, the peer users pick for speed),
side by side on the same text with the same Hugging Face tokenizer object (issue 15):

1. token windows: ``TokenWindowChunker`` vs ``chonkie.TokenChunker`` on ``pydoc_data.topics``;
2. sentences: ``SentenceChunker(unit="sentence")`` with the rule splitter and with spaCy vs
   ``chonkie.SentenceChunker``, and how the sentence boundaries of the rules (and of chonkie's
   delimiters) agree with spaCy's on ``pydoc_data.topics`` and on Paul Graham's essays;
3. code: ``CodeChunker`` with the LLM stubbed out (structure only; the model is loaded before timing)
   vs ``chonkie.CodeChunker`` on 20 standard-library files, with the distribution of chunk sizes.

Each time is the best of ``--repeats`` runs. "exact" is the share of chunks whose text is
``text[start:end]`` of their document. chonkie 1.7.0's CodeChunker needs tree-sitter-language-pack
>= 1.8 (ragpress pins 0.13.0, whose API it cannot call) and downloads grammars when it is built; see
:mod:`benchmarks._chonkie_code` for how it is run offline (run this script in an environment that has
that package at 1.x, else the code table shows ragpress alone).

    python -m benchmarks.chunker_speed [--repeats 3] [--max-tokens 256] [--code-max-tokens 512]
"""

from __future__ import annotations

import argparse
import statistics
import sysconfig
import time
from pathlib import Path

from benchmarks._common import paul_graham_essays, print_table
from ragpress.chunkers.base import check_cover
from ragpress.chunkers.code import CodeChunker
from ragpress.chunkers.sentence import SentenceChunker, rule_sentences, split_sentences
from ragpress.chunkers.token_window import TokenWindowChunker
from ragpress.core.loaders import load_causal_lm, load_tokenizer
from ragpress.core.types import Document
from ragpress.demo import python_reference

MODULES = ("argparse ast calendar configparser csv dataclasses difflib enum fractions functools heapq inspect "
           "ipaddress json/decoder logging/__init__ pprint shutil string textwrap typing").split()  # fmt: skip


def stdlib_files() -> list[Document]:
    """The 20 standard-library files of :data:`MODULES`, as Python documents."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return [Document((root / f"{m}.py").read_text(), id=m, metadata={"language": "python"}) for m in MODULES]


def best_time(fn, repeats: int):
    """``fn()``'s result and its best wall time over ``repeats`` runs."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def ours(chunker, docs: list[Document]):
    chunks = chunker.run(docs)
    by_doc = {d.id: [c for c in chunks if c.doc_id == d.id] for d in docs}
    for doc in docs:
        check_cover(doc, by_doc[doc.id])  # exact spans, nothing dropped
    return [(c.text, c.start, c.end, c.token_count, c.doc_id) for c in chunks]


def theirs(chunker, docs: list[Document]):
    return [(c.text, c.start_index, c.end_index, c.token_count, d.id) for d in docs for c in chunker.chunk(d.text)]


def exact_share(rows, docs: list[Document]) -> float:
    text = {d.id: d.text for d in docs}
    return sum(text[doc_id][a:b] == t for t, a, b, _, doc_id in rows) / max(1, len(rows))


def boundary_f1(found: list[list[tuple[int, int]]], reference: list[list[tuple[int, int]]]) -> tuple[float, float, float]:
    """Precision, recall and F1 of sentence starts (after the first) against the reference's."""
    hit = extra = missed = 0
    for spans, ref in zip(found, reference):
        a, b = {s for s, _ in spans[1:]}, {s for s, _ in ref[1:]}
        hit, extra, missed = hit + len(a & b), extra + len(a - b), missed + len(b - a)
    p, r = hit / max(1, hit + extra), hit / max(1, hit + missed)
    return p, r, 2 * p * r / max(1e-9, p + r)


def chonkie_sentences(text: str) -> list[tuple[int, int]]:
    """chonkie's SentenceChunker delimiter split (its defaults), as whitespace-trimmed spans."""
    from chonkie.chunker.base import split_text_by_delimiters

    spans, start = [], 0
    for piece in split_text_by_delimiters(text, delimiters=[". ", "! ", "? ", "\n"], include_delim="prev", min_chars=12):
        stripped = piece.strip()
        if stripped:
            a = start + piece.index(stripped)
            spans.append((a, a + len(stripped)))
        start += len(piece)
    return spans


def sizes(rows, limit: int) -> tuple:
    counts = sorted(r[3] for r in rows)
    q = statistics.quantiles(counts, n=4) if len(counts) > 1 else counts * 3
    return (len(counts), f"{sum(c < limit / 10 for c in counts) / len(counts):.1%}", f"{sum(c < 50 for c in counts) / len(counts):.1%}",
            f"{q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f}", max(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokenizer", default="minilm-l6", help="token windows and sentences")
    parser.add_argument("--code-tokenizer", default="smollm2-135m")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--code-max-tokens", type=int, default=512)
    parser.add_argument("--essays", type=int, default=40, help="essays for the boundary agreement")
    args = parser.parse_args()
    import chonkie

    from benchmarks._chonkie_code import chonkie_code_chunker

    docs, tokenizer, n = python_reference(), load_tokenizer(args.tokenizer), args.max_tokens
    print(f"chonkie {chonkie.__version__}; text: pydoc_data.topics, {len(docs)} documents, {sum(len(d.text) for d in docs):,} characters; "
          f"tokenizer {args.tokenizer} (the same object on both sides); best of {args.repeats}", flush=True)
    cases = [
        ("token windows", "ragpress TokenWindowChunker", lambda: ours(TokenWindowChunker(size=n, overlap=0, tokenizer=args.tokenizer), docs)),
        ("token windows", "chonkie TokenChunker", lambda: theirs(chonkie.TokenChunker(tokenizer=tokenizer, chunk_size=n), docs)),
        ("sentences", "ragpress SentenceChunker (rules)", lambda: ours(SentenceChunker(unit="sentence", max_tokens=n, tokenizer=args.tokenizer), docs)),
        ("sentences", "ragpress SentenceChunker (spaCy)", lambda: ours(SentenceChunker(unit="sentence", max_tokens=n, tokenizer=args.tokenizer, splitter="spacy"), docs)),
        ("sentences", "chonkie SentenceChunker", lambda: theirs(chonkie.SentenceChunker(tokenizer=tokenizer, chunk_size=n), docs)),
    ]
    ours(SentenceChunker(unit="sentence", splitter="spacy"), docs[:1])  # load spaCy and the tokenizer before timing
    rows = []
    for task, name, fn in cases:
        result, seconds = best_time(fn, args.repeats)
        rows.append((task, name, f"{seconds:.3f}", len(result), f"{exact_share(result, docs):.1%}", max(r[3] for r in result)))
    print_table(("task", "chunker", "seconds", "chunks", "exact", "largest (tokens)"), rows)

    essays = [Document(t, id=f"essay{i}") for i, t in enumerate(paul_graham_essays()[: args.essays])]
    rows = []
    for corpus, texts in (("pydoc_data.topics", [d.text for d in docs]), (f"{len(essays)} Paul Graham essays", [d.text for d in essays])):
        spacy = [split_sentences(t) for t in texts]
        for name, split in (("ragpress rules", rule_sentences), ("chonkie delimiters", chonkie_sentences)):
            p, r, f = boundary_f1([split(t) for t in texts], spacy)
            rows.append((corpus, name, sum(map(len, spacy)), f"{p:.3f}", f"{r:.3f}", f"{f:.3f}"))
    print("\nSentence boundaries against spaCy's (en_core_web_sm sentence recogniser):")
    print_table(("text", "splitter", "spaCy sentences", "precision", "recall", "F1"), rows)

    files, limit = stdlib_files(), args.code_max_tokens
    code_tokenizer = load_tokenizer(args.code_tokenizer)
    CodeChunker.ask_llm = lambda self, prompts: [""] * len(prompts)  # LLM off: the structural chunking is timed
    mine = CodeChunker(max_tokens=limit, tokenizer=args.code_tokenizer)
    load_causal_lm(mine.model)
    print(f"\nCode: {len(files)} stdlib files, {sum(len(d.text) for d in files):,} characters; tokenizer {args.code_tokenizer}; limit {limit} tokens")
    cases = [("ragpress CodeChunker (LLM off)", lambda: ours(mine, files))]
    chonkie_code = chonkie_code_chunker(code_tokenizer, limit)
    if isinstance(chonkie_code, str):
        print(f"chonkie CodeChunker not run: {chonkie_code}")
    else:
        cases.append(("chonkie CodeChunker", lambda: theirs(chonkie_code, files)))
    rows = []
    for name, fn in cases:
        result, seconds = best_time(fn, args.repeats)
        rows.append((name, f"{seconds:.2f}", *sizes(result, limit), f"{exact_share(result, files):.1%}"))
    print_table(("chunker", "seconds", "chunks", f"< {limit // 10} tokens", "< 50 tokens", "quartiles (tokens)", "largest", "exact"), rows)


if __name__ == "__main__":
    main()
