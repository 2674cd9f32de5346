#!/usr/bin/env bash
# Set up, then run the whole test suite (unit tests on tiny random models, integration tests on
# the bundled real models; GPU tests are skipped without CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false python3 -m pytest -q -p no:cacheprovider "$@"
