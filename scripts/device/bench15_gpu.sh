#!/usr/bin/env bash
# Issue 15's two GPU benchmarks at once on a 2-GPU machine (nvidia-h200-x2), one per GPU, in the last call of
# `python3 scripts/device/kit_plan.py bench15` (RUNBOOK.md), once its kits are installed and env.sh is sourced:
# benchmarks.batch_throughput on GPU 0 and benchmarks.query_batch on GPU 1. Each writes its own log and JSON
# under $OUT as it goes (a timeout keeps what each printed); the script waits for both and prints their exit
# statuses and last lines.
#   bash scripts/device/bench15_gpu.sh [DOCUMENTS FILES QUERIES]      (default 100 50 64)
set -u
: "${OUT:?OUT must name the folder that comes back}" "${KITS:?source /root/kits/env.sh first}"
DOCUMENTS=${1:-100} FILES=${2:-50} QUERIES=${3:-64}
OFFICIAL=$KITS/official/files
CUDA_VISIBLE_DEVICES=0 python3 -m benchmarks.batch_throughput --inputs "$OFFICIAL/inputs.json.gz" \
  --official-mc "$OFFICIAL/Meta-Chunking/tools" --official-lcz "$OFFICIAL/LongCodeZip" \
  --documents "$DOCUMENTS" --files "$FILES" --json "$OUT/batch_throughput.json" > "$OUT/batch_throughput.log" 2>&1 &
batch=$!
CUDA_VISIBLE_DEVICES=1 python3 -m benchmarks.query_batch --queries "$QUERIES" --max-new-tokens 48 \
  --out "$OUT/query_batch.json" > "$OUT/query_batch.log" 2>&1 &
query=$!
wait $batch; echo "batch_throughput exit status $?"
wait $query; echo "query_batch exit status $? (1: some query differs; its first differing stage is in the log)"
for name in batch_throughput query_batch; do echo "== $name"; grep -v "execution time\|it/s\]" "$OUT/$name.log" | tail -n 12; done
