"""Build the training rows of the shipped Provence checkpoint (and the held-out evaluation rows).

    HF_HUB_OFFLINE=1 python scripts/provence_data.py OUT_DIR

writes OUT_DIR/train.jsonl (68 Wikipedia articles of gensim's test dump, seed 0, up to 3 questions a passage) and OUT_DIR/heldout.jsonl
(the other 17 articles, every 5th in dump order, seed 1). Needs `pip install gensim` (data only).
"""

import sys
from pathlib import Path

from ragpress.compressors.provence_data import constructed_rows, wikipedia_split, write_jsonl

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "provence_data")
    train, held_out = wikipedia_split()
    for name, docs, seed, per_passage in (("train", train, 0, 3), ("heldout", held_out, 1, 1)):
        rows = constructed_rows(docs, seed=seed, questions_per_passage=per_passage)
        write_jsonl(rows, out / f"{name}.jsonl")
        print(f"{name}: {len(docs)} articles, {len(rows)} rows ({sum(r['answer_sentence'] is not None for r in rows)} with an answer)")
