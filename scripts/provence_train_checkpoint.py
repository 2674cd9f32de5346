"""Train the shipped Provence checkpoint (``ragpress/compressors/checkpoints/provence-minilm``).

    python scripts/provence_train_checkpoint.py TRAIN_JSONL BASE OUT_DIR [--epochs 4 --batch-size 32]

BASE is the MiniLM encoder ("minilm-l6", or a local copy of it on a machine without the package); the
saved config names "minilm-l6" either way. The shipped run: see benchmarks/RESULTS.md (Provence).
"""

import argparse
import json
from pathlib import Path

from ragpress.compressors.provence_train import train_provence

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("base")
    parser.add_argument("out")
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()
    notes = {"data": "constructed keyword questions over 68 Wikipedia articles of gensim's test dump "
                     "(scripts/provence_data.py, seed 0); the 17 held-out articles are never seen",
             "base_weights": "MiniLM-L6 (all-MiniLM-L6-v2) as bundled; trained on an fp16 copy when BASE is a path"}
    record = train_provence(args.data, args.out, base=args.base, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, notes=notes)
    config_path = Path(args.out) / "config.json"
    config = json.loads(config_path.read_text())
    config["base_model"] = "minilm-l6"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    losses = record["losses"]
    print(f"steps {record['steps']} windows {record['windows']} loss {losses[0]:.4f} -> {record['final_loss']:.4f}")
    print("loss every 10%:", [round(sum(losses[i : i + 10]) / len(losses[i : i + 10]), 4) for i in range(0, len(losses), max(1, len(losses) // 10))])
