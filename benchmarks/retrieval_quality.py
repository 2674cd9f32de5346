"""Retrieval quality of LATTICE and of REBEL-reranked dense retrieval against plain dense retrieval,
and LATTICE's LLM calls per query as the corpus grows, measured side by side in one run.

Corpus: CPython's pydoc topics (``pydoc_data.topics``), cut into ~``--chars`` character chunks at
whitespace. Held-apart questions by construction: for a randomly chosen chunk of the small corpus we
take a sentence holding a word found in no other chunk of the large corpus, mask that word, and ask
for the passage that says it; the gold chunk is the one the sentence came from. No method sees the
questions before it is asked them. Dense retrieval is faiss inner product over normalised MiniLM
embeddings; REBEL reranks its top ``--rerank`` chunks. The large corpus holds ``--scale`` times as
many chunks (the small one is a subset), so calls per query can be compared at fixed questions.

    python -m benchmarks.retrieval_quality   # tiny CPU sizes; larger: see --help

The defaults are sized for a shared 2-core CPU, where SmolLM2-135M generates about one token a
second: they show the mechanics and the calls-vs-corpus scaling, not statistically tight recall.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter

import faiss
import numpy as np

from benchmarks._common import print_table
from ragpress.core.types import Chunk, Document
from ragpress.models import load_embedder
from ragpress.retrievers.lattice import LatticeRetriever
from ragpress.retrievers.rebel import RebelReranker


def pydoc_chunks(chars: int) -> list[Chunk]:
    import pydoc_data.topics as topics

    out = []
    for name in sorted(topics.topics):
        doc = Document(topics.topics[name], id=name)
        start = 0
        while start < len(doc.text):
            end = min(len(doc.text), start + chars)
            if end < len(doc.text):
                end = doc.text.rfind(" ", start + chars // 2, end) + 1 or end
            if doc.text[start:end].strip():
                out.append(Chunk.of(doc, start, end))
            start = end
    return out


def questions(small: list[Chunk], large: list[Chunk], count: int, rng: random.Random) -> list[tuple[str, Chunk]]:
    words = lambda text: set(re.findall(r"[A-Za-z]{5,}", text.lower()))
    df = Counter(w for c in large for w in words(c.text))
    out = []
    for chunk in rng.sample(small, len(small)):
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(chunk.text.split())) if 8 <= len(s.split()) <= 30]
        for sentence in sentences:
            rare = sorted(w for w in words(sentence) if df[w] == 1)
            if rare:
                masked = re.sub(rf"\b{rare[0]}\b", "___", sentence, flags=re.IGNORECASE)
                out.append((f"Which passage says: {masked}", chunk))
                break
        if len(out) == count:
            break
    return out


def dense_search(chunks: list[Chunk], queries: list[str], k: int) -> list[list[Chunk]]:
    model = load_embedder("minilm-l6")
    vectors = np.asarray(model.encode([c.text for c in chunks], normalize_embeddings=True), np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    scores, ids = index.search(np.asarray(model.encode(queries, normalize_embeddings=True), np.float32), k)
    return [[chunks[i].with_score(s) for s, i in zip(rs, ri)] for rs, ri in zip(scores, ids)]


def recall(results: list[list[Chunk]], gold: list[Chunk], k: int) -> float:
    return float(np.mean([any((c.doc_id, c.start) == (g.doc_id, g.start) for c in r[:k]) for r, g in zip(results, gold)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10, help="small corpus size (chunks)")
    parser.add_argument("--scale", type=int, default=10, help="large corpus = scale x small")
    parser.add_argument("--chars", type=int, default=400)
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--scale-questions", type=int, default=2, help="questions asked of LATTICE on the large corpus")
    parser.add_argument("--rerank", type=int, default=3, help="dense candidates REBEL reranks")
    parser.add_argument("--rebel-modes", default="two_turn", help="comma-separated: one_turn,two_turn")
    parser.add_argument("--branching", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--score-tokens", type=int, default=40)
    parser.add_argument("--summary-tokens", type=int, default=20)
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    everything = pydoc_chunks(args.chars)
    large = rng.sample(everything, min(len(everything), args.chunks * args.scale))
    small = large[: args.chunks]
    qs = questions(small, large, args.questions, rng)
    queries, gold = [q for q, _ in qs], [g for _, g in qs]
    ks = [k for k in (1, 3, 5) if k <= args.rerank]
    print(f"corpus: pydoc topics, {len(small)} / {len(large)} chunks of ~{args.chars} chars; {len(qs)} questions; LLM {args.llm}")
    rows: dict[str, dict[int, float]] = {}
    timing: dict[str, float] = {}

    start = time.perf_counter()
    dense = dense_search(small, queries, max(args.rerank, 5))
    timing["dense"] = time.perf_counter() - start
    rows["dense (MiniLM, faiss)"] = {k: recall(dense, gold, k) for k in ks}

    for mode in [m for m in args.rebel_modes.split(",") if m]:
        reranker = RebelReranker(model=args.llm, mode=mode, reasoning=False, max_new_tokens=args.score_tokens, criteria_max_new_tokens=48, passage_chars=args.chars)
        start, calls, fallbacks = time.perf_counter(), [], 0
        reranked = []
        for query, hits in zip(queries, dense):
            reranked.append(reranker.run(query, hits[: args.rerank]))
            calls.append(reranker.last_trace.llm_calls)
            fallbacks += sum(r.fallback is not None for r in reranker.last_trace.ratings)
        timing[f"rebel {mode}"] = time.perf_counter() - start
        rows[f"dense top-{args.rerank} + REBEL {mode}"] = {k: recall(reranked, gold, k) for k in ks}
        print(f"REBEL {mode}: {np.mean(calls):.1f} LLM calls/query, {fallbacks} of {len(queries) * args.rerank} ratings fell back")

    calls_by_size = {}
    for name, corpus, asked in (("small", small, len(queries)), ("large", large, min(args.scale_questions, len(queries)))):
        lattice = LatticeRetriever(model=args.llm, top_k=max(ks), branching=args.branching, max_iterations=args.iterations, reasoning=False,
                                   leaf_calibration=3, candidate_chars=120, score_max_new_tokens=args.score_tokens, summary_words=20, summary_max_new_tokens=args.summary_tokens)
        start = time.perf_counter()
        lattice.index(corpus)
        built = time.perf_counter() - start
        start, results, calls, parsed = time.perf_counter(), [], [], []
        for query in queries[:asked]:
            results.append(lattice.run(query))
            calls.append(lattice.last_trace.llm_calls)
            parsed += [s.parsed for s in lattice.last_trace.steps]
        timing[f"lattice {name} build"], timing[f"lattice {name} queries"] = built, time.perf_counter() - start
        calls_by_size[name] = (len(corpus), lattice.tree.depth, float(np.mean(calls)), float(np.mean(parsed)))
        if name == "small":
            rows["LATTICE"] = {k: recall(results, gold, k) for k in ks}
        print(f"LATTICE {name}: {len(corpus)} chunks, depth {lattice.tree.depth}, {np.mean(calls):.1f} LLM calls/query, "
              f"{np.mean(parsed):.0%} of slates parsed (rest scored by embedding fallback), recall@{max(ks)} {recall(results, gold[:asked], max(ks)):.2f}")

    print()
    base = rows["dense (MiniLM, faiss)"]
    print_table([f"method ({len(small)} chunks, {len(qs)} questions)", *(f"recall@{k}" for k in ks)], [
        [name, *(f"{row[k]:.2f} ({row[k] / base[k]:.2f}x dense)" if base[k] else f"{row[k]:.2f}" for k in ks)]
        for name, row in rows.items()])
    (n_s, d_s, c_s, _), (n_l, d_l, c_l, _) = calls_by_size["small"], calls_by_size["large"]
    print(f"\nLATTICE LLM calls/query: {c_s:.1f} at {n_s} chunks (depth {d_s}) vs {c_l:.1f} at {n_l} chunks (depth {d_l}): "
          f"{n_l / n_s:.0f}x the corpus -> {c_l / c_s:.2f}x the calls")
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timing.items()))


if __name__ == "__main__":
    main()
