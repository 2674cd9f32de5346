#!/usr/bin/env bash
# Copied into every .device/kits/KIT/part-NN/ as install.sh by scripts/device/make_gpu_kits.sh. On the device machine,
# first thing in a call that carries that folder:  bash .device/kits/KIT/part-NN/install.sh
# Stores the part under $KIT_ROOT (default /root, which survives only while the machine is warm: 30 s after a call);
# once every part of KIT has arrived it joins them, checks the sha256 the MANIFEST names, unpacks, installs the kit's
# wheels with pip --no-index into $ROOT/$target, runs the kit's setup.sh and prints "KIT <name> READY". Then
# `source $ROOT/kits/env.sh` sets PYTHONPATH, RAGPRESS_CACHE and the offline switches for the benchmarks.
# KIT_PIP_ARGS adds pip options (the CPU check passes --python-version 3.12 --platform ... to install GPU wheels here).
set -euo pipefail
ROOT=${KIT_ROOT:-/root}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/MANIFEST"  # kit, index, parts, sha256, target
home=$ROOT/kits/$kit
if [ -f "$home/READY" ]; then echo "KIT $kit READY (already installed)"; exit 0; fi
store=$ROOT/kits/.parts/$kit
mkdir -p "$store"
cp "$HERE/chunk" "$store/$index"
have=$(ls "$store" | wc -l)
if [ "$have" -lt "$parts" ]; then
  echo "KIT $kit: part $index stored ($have of $parts): carry the next part within 30 s"
  exit 0
fi
cat "$store"/* > "$ROOT/kits/$kit.tar"
if ! echo "$sha256  $ROOT/kits/$kit.tar" | sha256sum -c --status; then
  echo "KIT $kit: the joined parts do not match the MANIFEST's sha256 (a part from another build?): rebuild with scripts/device/make_gpu_kits.sh $kit" >&2
  rm -rf "$store" "$ROOT/kits/$kit.tar"
  exit 1
fi
mkdir -p "$home"
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' "$ROOT/kits/$kit.tar" "$home"
rm -rf "$store" "$ROOT/kits/$kit.tar"
if compgen -G "$home/wheels/*.whl" > /dev/null; then
  # shellcheck disable=SC2086  # KIT_PIP_ARGS is a list of options
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$ROOT/$target" ${KIT_PIP_ARGS:-} "$home"/wheels/*.whl
fi
mkdir -p "$ROOT/shim" "$ROOT/rpcache"
cat > "$ROOT/kits/env.sh" <<ENV
export PYTHONPATH=$ROOT/shim:$ROOT/site:\$PWD RAGPRESS_CACHE=$ROOT/rpcache KITS=$ROOT/kits
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 TQDM_DISABLE=1
ENV
if [ -f "$home/setup.sh" ]; then KIT_ROOT=$ROOT KIT_HOME=$home bash "$home/setup.sh"; fi
touch "$home/READY"
echo "KIT $kit READY ($(du -sh "$home" | cut -f1) unpacked at $home)"
