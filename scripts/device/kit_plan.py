"""The `run` calls that carry the kits of scripts/device/make_gpu_kits.sh and then run the owed GPU benchmarks,
for runs made one after another on one warm machine (a kit sent for an earlier run is not sent again):

    python3 scripts/device/kit_plan.py decode batch query eval      # nvidia-h200, in that order
    python3 scripts/device/kit_plan.py ray                          # nvidia-h200-x2, its own machine
    python3 scripts/device/kit_plan.py bench15                      # nvidia-h200-x2: issue 15's two runs, a GPU each
    python3 scripts/device/kit_plan.py eval                         # nvidia-h200-x2: the eval, 4 workers a GPU

Parts are packed into as few calls as the per-call limit allows (64 MiB with the tree that travels); the last call of
a run's transfers also runs its first benchmark. Each call must follow the one before within 30 s (the machine keeps
/root only that long), so make them back to back, reading nothing in between but the "KIT ... READY" lines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

KITS = Path(".device/kits")
LIMIT = 64 * 1048576
INSTALL_S = 90  # a transfer call: the install, SmolLM2's conversion (about 30 s) at most
ENV = "set -o pipefail; source /root/kits/env.sh"
TF = "PYTHONPATH=/root/site-tf:$PYTHONPATH"  # transformers 5.24, as the earlier decode runs had
RUNS: dict[str, tuple[list[str], list[tuple[str, str, int]]]] = {  # name: (kits, [(log, command, timeout_s)])
    "decode": (["smollm2", "tf"], [
        ("decode_equal", f"{TF} python3 -m benchmarks.decode_equal --new 48", 420),
        ("decode_limit", f"{TF} python3 -m benchmarks.decode_limit --lengths 65536 --batch 1 --only retrolm", 360),
    ]),
    "batch": (["smollm2", "code", "official"], [
        ("batch_throughput", "python3 -m benchmarks.batch_throughput --inputs $KITS/official/files/inputs.json.gz"
         " --official-mc $KITS/official/files/Meta-Chunking/tools --official-lcz $KITS/official/files/LongCodeZip"
         " --documents 100 --files 50 --json $OUT/batch_throughput.json", 590),
    ]),
    "query": (["smollm2", "minilm", "spacy", "search"], [
        ("query_batch", "python3 -m benchmarks.query_batch --queries 64 --max-new-tokens 48 --out $OUT/query_batch.json", 420),
    ]),
    "bench15": (["smollm2", "code", "official", "minilm", "spacy", "search"], [  # nvidia-h200-x2: both runs at once, a GPU each
        ("bench15", "bash scripts/device/bench15_gpu.sh 100 50 64", 590),
    ]),
    "eval": (["smollm2", "minilm", "spacy", "search", "code", "eval"], [  # nvidia-h200-x2: 8 workers, 4 a GPU (RUNBOOK.md)
        ("eval", "PER_GPU=4 bash scripts/device/eval_gpu.sh 340 4 $KITS/eval/files", 420),
    ]),
    "ray": (["minilm", "ray"], [
        ("scale_index", "NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1"
         " python3 -m benchmarks.scale_index --documents 5000 --workers 1 2 --ann-rows 0", 590),
    ]),
}


def tree_bytes() -> int:
    """Bytes of the checkout that travel with every call (tracked, and untracked files not ignored)."""
    names = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"], capture_output=True, check=True).stdout
    return sum(Path(n).stat().st_size for n in names.decode().split("\0") if n and Path(n).is_file())


def parts(kit: str) -> list[Path]:
    found = sorted((KITS / kit).glob("part-*"))
    if not found:
        raise SystemExit(f"No parts of kit {kit!r} under {KITS}: build it with scripts/device/make_gpu_kits.sh {kit}")
    return found


def size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir())


def calls(runs: list[str]) -> list[dict]:
    """The calls, each {carry, command, timeout_s, mib}: transfers packed first-fit in order, then the benchmarks."""
    room, sent, out = LIMIT - tree_bytes() - 1048576, set(), []
    for run in runs:
        kits, benches = RUNS[run]
        batches: list[list[Path]] = []
        for kit in (k for k in kits if k not in sent):
            for part in parts(kit):
                if not batches or sum(map(size, batches[-1])) + size(part) > room or len(batches[-1]) == 8:
                    batches.append([])
                batches[-1].append(part)
            sent.add(kit)
        steps = [(b, None) for b in batches] or [([], None)]
        steps[-1] = (steps[-1][0], benches[0])
        steps += [([], bench) for bench in benches[1:]]
        for carry, bench in steps:
            install = f"for p in {' '.join(map(str, carry))}; do bash $p/install.sh || exit 1; done; " if carry else ""
            command, timeout = install.removesuffix("; "), INSTALL_S if carry else 0
            if bench:  # env.sh exists once a kit is complete: a call that only stores a part must not source it
                log, line, seconds = bench
                command = f"{install}{ENV}; nvidia-smi -L; {line} 2>&1 | tee $OUT/{log}.log"
                timeout += seconds
            out.append({"run": run, "carry": [str(p) for p in carry], "command": command, "timeout_s": min(timeout, 600),
                        "mib": round(sum(map(size, carry)) / 1048576, 1)})
    return out


def main(runs: list[str]) -> int:
    unknown = [r for r in runs if r not in RUNS]
    if unknown or not runs:
        print(f"Name runs from {', '.join(RUNS)} (got {' '.join(runs) or 'none'})", file=sys.stderr)
        return 1
    for number, call in enumerate(calls(runs), 1):
        print(f"# call {number} ({call['run']}): {call['mib']} MiB carried")
        print(f"carry={call['carry']}\ntimeout_s={call['timeout_s']}\ncommand={call['command']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
