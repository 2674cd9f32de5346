#!/usr/bin/env bash
# Set up, then run the demo: RAG over the Python language reference with the bundled models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
HF_HUB_OFFLINE=1 ragpress demo "$@"
