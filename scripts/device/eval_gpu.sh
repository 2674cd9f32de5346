#!/usr/bin/env bash
# The GPU tables of benchmarks/RESULTS.md ("Evaluation harness"), on every visible GPU at once:
#   bash scripts/device/eval_gpu.sh SECONDS LIMIT [E_FOLDER]
# after the kits of scripts/device/make_gpu_kits.sh are installed (scripts/device/RUNBOOK.md, "eval"): E_FOLDER is
# where the eval kit's files are (default /root/kits/eval/files: tasks/*.jsonl, made by `make_gpu_kits.sh eval`).
# The rows (task x example x method x ratio) are dealt round-robin to WORKERS = GPUs x PER_GPU processes
# (`ragpress eval --shard i/N`, each on GPU i mod GPUs through CUDA_VISIBLE_DEVICES, each with its own
# predictions file); each worker runs the three tasks in turn, a task getting what is left of SECONDS over
# the tasks left. Rows already in PRIOR (default scripts/device/eval_done.jsonl: the 213 rows of 2026-11-30)
# are skipped; at the end python -m ragpress.eval.merge joins PRIOR and the shards into $OUT/ev (predictions,
# table.md, score_vs_ratio.png), even after a timeout. METHODS=... chooses the methods (Provence and EDU
# selection need the spacy kit), MODEL=... the answering model; AB=0 skips the decode-path check that runs first
# (benchmarks/stream_ab.py, ~20 s). PER_GPU > 1 shares a GPU between processes: the eager decode of a 135M model
# leaves the GPU mostly idle, but the cost columns are then measured under that sharing; say so with the table.
# Each worker may take 0.9/PER_GPU of its GPU's memory (--gpu-memory-fraction: the batch budgets follow it; without
# it the first worker's budgets took what the others needed and 65 code rows failed out of memory on 2026-11-30).
# $OUT gets at most 8 files back: the shards' predictions and logs travel as $OUT/ev_shards.tgz.
set -u
SECONDS_TOTAL=${1:-300}
LIMIT=${2:-4}
E=${3:-/root/kits/eval/files}
PER_GPU=${PER_GPU:-1}
PRIOR=${PRIOR-scripts/device/eval_done.jsonl}
METHODS=${METHODS:-"full none first_k random_drop dense bm25 gemfilter retrolm compllm arc_encoder longcodezip provence edu_select longllmlingua rebel lattice"}
TASKS=${TASKS:-"niah_multikey wiki_cloze code_completion"}
source "${KIT_ROOT:-/root}/kits/env.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # many workers on one host: each a few CPU threads (spaCy, BM25, tokenizers)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
if [ "${AB:-1}" = 1 ]; then  # the answer's decode paths on this GPU (benchmarks/stream_ab.py), ~20 s
  CUDA_VISIBLE_DEVICES=0 timeout 60 python3 -m benchmarks.stream_ab --model "${MODEL:-smollm2-135m}" --task-file "$E/tasks/niah_multikey.jsonl" \
    --json "$OUT/stream_ab.json" > "$OUT/stream_ab.log" 2>&1
  tail -3 "$OUT/stream_ab.log"
fi
GPUS=$(nvidia-smi -L | wc -l)
WORKERS=$((GPUS * PER_GPU))
DEADLINE=$(( $(date +%s) + SECONDS_TOTAL ))
mkdir -p "$OUT/ev"
WORK=${WORK:-/root/evwork}  # the shards' files, outside $OUT
rm -rf "$WORK"; mkdir -p "$WORK"
SHARE=$(python3 -c "print(round(0.9 / $PER_GPU, 4))")
echo "$WORKERS workers on $GPUS GPU(s), $SECONDS_TOTAL s, limit $LIMIT, prior: ${PRIOR:-none}"

worker() {  # worker I: every task, shard I of WORKERS, on GPU I mod GPUS
  local i=$1 left task tokens budget
  left=$(echo $TASKS | wc -w)
  mkdir -p "$WORK/shard-$i"
  [ -n "$PRIOR" ] && cp "$PRIOR" "$WORK/shard-$i/predictions.jsonl"  # the runner skips the rows its file holds
  for task in $TASKS; do
    tokens=$([ "$task" = code_completion ] && echo 64 || echo 32)
    budget=$(( (DEADLINE - $(date +%s)) / left )); left=$((left - 1))
    [ "$budget" -gt 10 ] || { echo "worker $i: no time left for $task"; continue; }
    CUDA_VISIBLE_DEVICES=$((i % GPUS)) timeout "$budget" python3 -m ragpress.cli eval --task "$E/tasks/$task.jsonl" \
      --methods $METHODS --ratios 2 4 8 --model "${MODEL:-smollm2-135m}" --limit "$LIMIT" --max-new-tokens "$tokens" --decode eager --shard "$i/$WORKERS" \
      --gpu-memory-fraction "$SHARE" --out "$WORK/shard-$i" >> "$WORK/shard-$i/log" 2>&1
    echo "worker $i $task: exit $? (124: its $budget s ran out), $((SECONDS_TOTAL - DEADLINE + $(date +%s))) s into the run"
  done
}

for i in $(seq 0 $((WORKERS - 1))); do worker "$i" & done
wait
# shellcheck disable=SC2086
python3 -m ragpress.eval.merge "$OUT/ev" $PRIOR "$WORK"/shard-*/predictions.jsonl --methods $METHODS
tar czf "$OUT/ev_shards.tgz" -C "$WORK" .
python3 - "$OUT/ev/predictions.jsonl" $METHODS <<'PY'
import json, sys, collections
rows = [json.loads(line) for line in open(sys.argv[1])]
print("rows per task:", dict(collections.Counter(r["task"] for r in rows)), "failed:", sum("error" in r for r in rows))
PY
cat "$OUT/ev/table.md"
