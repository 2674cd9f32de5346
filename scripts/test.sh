#!/usr/bin/env bash
# Set up, then run the whole test suite (unit tests on tiny random models, integration tests on
# the bundled real models; GPU tests are skipped without CUDA). Extra arguments go to pytest:
# `bash scripts/test.sh -m "not integration"` is the fast lane (unit tests only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One torch thread unless told otherwise: on a small CPU shared with other jobs, torch's worker
# threads wait on each other (measured here under load: a MiniLM query 950 ms on 2 threads, 25 ms on 1;
# the retrievers notebook's LATTICE cell over 300 s on 2 threads, 84 s on 1).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false python3 -m pytest -q -p no:cacheprovider "$@"
