#!/usr/bin/env bash
# Train the shipped checkpoints of the bundled models on one GPU, past one device call's 10 minutes: `start`
# launches the trainers in their own process sessions (they outlive the call while the machine stays warm),
# `wait` follows their logs, `eval` scores the new and the shipped ARC-Encoder on held-out text and packs
# everything into $OUT/checkpoints.tar.gz. Every trainer reads the one corpus of ragpress.corpora.
# Run from the repository root on the device machine, after scripts/device/install_kit.sh printed KIT READY:
#   bash scripts/device/train_checkpoints.sh start SECONDS [ARC_BATCH=64]   # ARC-Encoder for SECONDS, Provence beside it
#   bash scripts/device/train_checkpoints.sh wait MAX_SECONDS              # returns early once both ended
#   bash scripts/device/train_checkpoints.sh eval                          # -> $OUT/checkpoints.tar.gz
# (CompLLM: `ragpress train compllm --corpus $K/corpus.jsonl.gz --max-seconds 600 --batch-size 48`, the same way.)
set -uo pipefail
W=${TRAIN_DIR:-/root/train} K=${KIT_DIR:-/root/kit}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 HF_HUB_OFFLINE=1 RAGPRESS_CACHE=${RAGPRESS_CACHE:-/root/rpcache}
export PYTHONPATH=$W/repo:/root/site PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
mkdir -p $W
TRAINERS="arc provence"

launch() {  # name, command...: run in a new session, exit status to $W/name.rc
  local name=$1; shift
  rm -f $W/$name.rc
  setsid bash -c "cd $W/repo && $* > $W/$name.log 2>&1; echo \$? > $W/$name.rc" < /dev/null > /dev/null 2>&1 &
}

quiet() { grep -v "Loading weights\|FutureWarning\|warnings.warn"; }  # transformers' chatter

ended() { for name in $TRAINERS; do [ -f $W/$name.rc ] || return 1; done; }

report() {
  for name in $TRAINERS; do
    echo "--- $name $( [ -f $W/$name.rc ] && echo "ended rc=$(cat $W/$name.rc)" || echo running)"
    { quiet < $W/$name.log; } 2>/dev/null | tail -n 3
  done
  nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader 2>/dev/null || true
}

case ${1:-} in
  start)
    seconds=$2 arc_batch=${3:-64}
    test -f $RAGPRESS_CACHE/smollm2-135m-v2/model.safetensors || { echo "run install_kit.sh first"; exit 1; }
    rm -rf $W/repo && mkdir -p $W/repo && cp -r ragpress benchmarks $W/repo/  # the code stays fixed while they run
    date -u
    launch arc python3 -m ragpress.cli train arc-encoder --decoder smollm2-135m --out $W/arc-smollm2 --corpus $K/corpus.jsonl.gz \
      --seconds $seconds --batch-size $arc_batch
    launch provence python3 -m ragpress.cli train provence --out $W/provence-minilm --data $K/provence_train.jsonl \
      --base $K/minilm --base-name minilm-l6 --epochs 5 --batch-size 32 --lr 2e-4
    sleep 90; report ;;
  wait)
    end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ] && ! ended; do sleep 30; date -u; report; done
    report ;;
  eval)
    while ! ended; do sleep 10; done
    report
    cd $W/repo
    for ck in $W/arc-smollm2 arc-smollm2; do
      python3 -m benchmarks.arc_quality --checkpoint $ck --corpus $K/corpus.jsonl.gz --limit 200 --titles 20 --json $W/arc_quality_$(basename $ck).json 2>&1 \
        | quiet | tee -a $W/arc_quality.log
    done
    cd $W && tar czf $OUT/checkpoints.tar.gz arc-smollm2 provence-minilm *.log *.json && ls -la $OUT ;;
  *)
    sed -n 2,10p "$0"; exit 2 ;;
esac
