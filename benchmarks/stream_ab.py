"""How fast the eval harness's answers decode: ``CausalLM.stream``'s in-thread greedy loop
(:mod:`ragpress.core.greedy`) against ``generate`` in a background thread feeding a
``TextIteratorStreamer`` (the path before it), on one chat prompt, interleaved, timed as
``ragpress.eval.runner.answer`` times a row (first non-blank piece, then tokens per second after it).

    python -m benchmarks.stream_ab [--model smollm2-135m] [--context 4096 | --task-file X.jsonl] [--new 32] [--repeats 3] [--json PATH]

On the 2-core CPU host at one torch thread (OMP_NUM_THREADS=1) a 30-layer stand-in of width 48 decoded at 9.4 ms
a token through the thread and 8.7 in the loop; at two threads the loop, in the main thread, took 226 ms (torch's
two threads contend there; in the worker thread torch ran on one), which is why CausalLM.stream takes the loop on
CUDA only. On the H200 the eval measured 55-70 ms a token through the thread and 31-36 ms in RetroLM's own loop
(2026-11-30): this script, run first by scripts/device/eval_gpu.sh, measures both paths there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

from benchmarks._common import sync  # noqa: F401  (sets HF_HUB_OFFLINE before ragpress loads a model)
from ragpress.core.greedy import greedy_text
from ragpress.core.loaders import load_causal_lm
from ragpress.eval.registry import generate as make_examples
from ragpress.eval.user_tasks import load_jsonl


def threaded(lm, prompt, new):
    """The path before: generate in a background thread, text through a TextIteratorStreamer."""
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(lm.tokenizer, skip_prompt=True, skip_special_tokens=True)
    worker = threading.Thread(target=lm.generate, args=(prompt, new, 0.0, 0, "eager"), kwargs={"streamer": streamer})
    worker.start()
    yield from streamer
    worker.join()


def timed(lm, pieces) -> dict:
    started, first, parts = time.perf_counter(), None, []
    for piece in pieces:
        if first is None and piece.strip():
            first = time.perf_counter()
        parts.append(piece)
    ended = time.perf_counter()
    text = "".join(parts)
    tokens = lm.count_tokens(text.strip())
    return {"text": text, "ttft_s": (first or ended) - started, "ms_per_token": 1000 * (ended - (first or ended)) / max(1, tokens - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--context", type=int, default=4096, help="tokens of the niah_multikey context")
    parser.add_argument("--task-file", default=None, help="take the first example of this JSON-lines task file instead (the GPU image lacks wonderwords)")
    parser.add_argument("--new", type=int, default=32, help="new tokens a reply")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    lm = load_causal_lm(args.model)
    example = load_jsonl(args.task_file)[0] if args.task_file else make_examples("niah_multikey", 1, args.context, tokenizer=args.model)[0]
    prompt = lm.chat_ids([{"role": "user", "content": f"{example.context}\n\n{example.question}"}])
    paths = {"thread": lambda: threaded(lm, prompt, args.new), "loop": lambda: greedy_text(lm.model, lm.tokenizer, prompt.to(lm.device), args.new)}
    for path in paths.values():  # warm: kernels, allocator
        timed(lm, path())
    runs: dict[str, list[dict]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, path in paths.items():
            runs[name].append(timed(lm, path()))
    same = len({r["text"] for rs in runs.values() for r in rs}) == 1
    summary = {name: {key: round(statistics.median(r[key] for r in rs), 4) for key in ("ttft_s", "ms_per_token")} for name, rs in runs.items()}
    print(f"{lm!r}, {prompt.shape[1]} prompt tokens, {args.new} new, {args.repeats} repeats; same text on both paths: {same}")
    for name, values in summary.items():
        print(f"  {name:6s} TTFT {values['ttft_s']:.3f} s, {values['ms_per_token']:.1f} ms a token (medians)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "prompt_tokens": prompt.shape[1], "new": args.new, "same_text": same, **summary}, f, indent=1)


if __name__ == "__main__":
    main()
