"""Provence pruner vs. embedding-similarity sentence selection at the same compression, on held-out
Wikipedia articles (never trained on).

    python -m benchmarks.provence_eval [--rows heldout.jsonl] [--model provence-minilm]

Rows: ``constructed_rows`` (seed 1) of the held-out Wikipedia articles of :mod:`ragpress.corpora`:
a keyword question made from one sentence of a 4-9 sentence passage (label 1 on that sentence), and
~30% hard negatives (the question paired with another passage of the same article, all labels 0).

For each passage Provence keeps the sentences whose mean P(keep) exceeds the threshold; the baseline
keeps, in the same passage, the same number of sentences, those most similar to the question by
MiniLM cosine. A labelled sentence counts as kept when more than half its characters are kept.
Reported: keep precision/recall (label 1 = keep), drop precision/recall (label 0 = drop), compression
(passage tokens / kept tokens, SmolLM2 tokenizer), answer-sentence survival, share of hard negatives
emptied, and rerank AUC (positive vs. negative passages: Provence rerank score vs. passage cosine).
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks._common import timed
from ragpress.compressors.provence import Provence
from ragpress.models import load_embedder, load_tokenizer


def kept_labels(row, sentences, threshold) -> list[bool]:
    """Which labelled sentences of ``row`` are kept, given Provence's sentences with probabilities."""
    spans = [(s["start"], s["end"]) for s in sentences if s["prob"] > threshold]
    out = []
    for a, b in row["sentence_spans"]:
        chars = sum(max(0, min(b, e) - max(a, s)) for s, e in spans)
        out.append(chars * 2 > b - a)
    return out


def metrics(rows, kept, token_counts) -> dict[str, float]:
    tp = fp = fn = tn = 0
    before = after = survived = positives = emptied = negatives = 0
    for row, keep, counts in zip(rows, kept, token_counts):
        for label, k, n in zip(row["sentence_labels"], keep, counts):
            tp, fp, fn, tn = tp + (label and k), fp + (not label and k), fn + (label and not k), tn + (not label and not k)
            before, after = before + n, after + n * k
        if row["answer_sentence"] is None:
            negatives, emptied = negatives + 1, emptied + (not any(keep))
        else:
            positives, survived = positives + 1, survived + keep[row["answer_sentence"]]
    return {"keep_P": tp / max(1, tp + fp), "keep_R": tp / max(1, tp + fn), "drop_P": tn / max(1, tn + fn), "drop_R": tn / max(1, tn + fp),
            "ratio": before / max(1, after), "answer_kept": survived / max(1, positives), "neg_emptied": emptied / max(1, negatives)}


def auc(scores, positive) -> float:
    pos = torch.tensor([s for s, p in zip(scores, positive) if p])
    neg = torch.tensor([s for s, p in zip(scores, positive) if not p])
    return ((pos[:, None] > neg[None]).float().mean() + 0.5 * (pos[:, None] == neg[None]).float().mean()).item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", help="held-out JSONL (default: build it from gensim's test Wikipedia dump)")
    parser.add_argument("--model", default="provence-minilm")
    parser.add_argument("--thresholds", default="0.1,0.3,0.5")
    args = parser.parse_args()
    if args.rows:
        rows = [json.loads(line) for line in open(args.rows, encoding="utf-8")]
    else:
        from ragpress.compressors.provence.data import constructed_rows, wikipedia_documents

        rows = constructed_rows(wikipedia_documents("heldout"), seed=1)
    stage = Provence(model=args.model, device="cpu")
    seconds, results = timed(lambda: [stage.score(r["query"], [r["passage"]])[0] for r in rows])
    tokenizer = load_tokenizer(stage.tokenizer)
    counts = [[len(tokenizer(r["passage"][a:b], add_special_tokens=False)["input_ids"]) for a, b in r["sentence_spans"]] for r in rows]

    embedder = load_embedder("minilm-l6", device="cpu")
    texts = [r["passage"][a:b] for r in rows for a, b in r["sentence_spans"]]
    vectors = embedder.encode(texts, batch_size=128, convert_to_tensor=True, normalize_embeddings=True)
    queries = embedder.encode([r["query"] for r in rows], batch_size=128, convert_to_tensor=True, normalize_embeddings=True)
    passages = embedder.encode([r["passage"] for r in rows], batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    similarity, cursor = [], 0
    for i, r in enumerate(rows):
        n = len(r["sentence_spans"])
        similarity.append((vectors[cursor : cursor + n] @ queries[i]).tolist())
        cursor += n

    print(f"{len(rows)} held-out rows ({sum(r['answer_sentence'] is not None for r in rows)} with an answer), "
          f"{sum(len(r['sentence_spans']) for r in rows)} sentences; Provence scoring {seconds:.1f} s on CPU")
    positive = [r["answer_sentence"] is not None for r in rows]
    print(f"rerank AUC: Provence {auc([x['rerank_score'] for x in results], positive):.3f} | "
          f"MiniLM passage cosine {auc((passages * queries).sum(-1).tolist(), positive):.3f}")
    header = f"{'method':<34}" + "".join(f"{k:>12}" for k in ("keep_P", "keep_R", "drop_P", "drop_R", "ratio", "answer_kept", "neg_emptied"))
    print(header)
    for threshold in (float(t) for t in args.thresholds.split(",")):
        ours = [kept_labels(r, x["sentences"], threshold) for r, x in zip(rows, results)]
        base = []
        for keep, sims in zip(ours, similarity):
            top = set(sorted(range(len(sims)), key=lambda j: -sims[j])[: sum(keep)])
            base.append([j in top for j in range(len(sims))])
        for name, kept in ((f"Provence ({args.model}) T={threshold}", ours), ("MiniLM cosine, same count", base)):
            m = metrics(rows, kept, counts)
            print(f"{name:<34}" + "".join(f"{v:>12.3f}" for v in m.values()))


if __name__ == "__main__":
    main()
