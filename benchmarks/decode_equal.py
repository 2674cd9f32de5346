"""Greedy tokens of the eager and the fast decode path with real weights (the bundled SmolLM2-135M-Instruct),
in float32 and bfloat16, on whatever device is there (meant for the GPU, where "fast" is the compiled
static cache).

Two generators per dtype: :meth:`CausalLM.generate` on a question over a Python reference topic, and
RetroLM over several topics (pages of 64 tokens, 6 kept, re-selecting every 8 tokens), each with
``decode="eager"`` and ``decode="static"``. Where the tokens part, the margin of the eager path's two
best logits at that step is printed in bfloat16 steps of its magnitude (a margin of one or two steps
is a tie that another kernel's rounding can flip; a wide one would be a real difference).

    python -m benchmarks.decode_equal [--new 48] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pydoc_data.topics import topics

import torch

from benchmarks._common import print_table
from ragpress.core.loaders import load_causal_lm
from ragpress.core.types import Chunk, Context, Document
from ragpress.generators.base import SYSTEM_PROMPT
from ragpress.generators.retrolm import RetroLMSettings, build_paged_context

QUESTION = "What does the with statement call when the block is exited?"
TOPICS = ("if", "while", "for", "try", "with", "assert", "global", "nonlocal", "pass", "break", "continue", "return")


def parted(lm, prompt: list[int], eager: list[int], static: list[int]) -> str:
    """'all N' when the two token lists agree, else the step where they part and the eager logits' margin there."""
    step = next((i for i, (a, b) in enumerate(zip(eager, static)) if a != b), None)
    if step is None and len(eager) == len(static):
        return f"all {len(eager)}"
    step = min(len(eager), len(static)) if step is None else step
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([prompt + eager[:step]], device=lm.device)).logits[0, -1].float()
    best, second = logits.topk(2).values.tolist()
    ulp = 2.0 ** (math.floor(math.log2(abs(best))) - 7)
    return f"first {step} of {len(eager)}; margin there {best - second:.3f} = {(best - second) / ulp:.1f} bf16 steps"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", type=int, default=48)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    text = "\n\n".join(topics[name][:1500] for name in TOPICS)
    doc = Document(text)
    context = Context(QUESTION, (Chunk.of(doc, 0, len(text)),))
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        lm = load_causal_lm("smollm2-135m", device=args.device, dtype=dtype)
        ids = lm.chat_ids([{"role": "user", "content": f"{topics['with'][:3000]}\n\n{QUESTION}"}])
        runs = {decode: lm.generate(ids, args.new, decode=decode).reshape(-1).tolist() for decode in ("eager", "static")}
        rows.append({"dtype": str(dtype), "generator": f"CausalLM.generate ({ids.numel()} prompt tokens)",
                     "match": parted(lm, ids.reshape(-1).tolist(), runs["eager"], runs["static"]), "pages": "-", "text": lm.tokenizer.decode(runs["static"][:24])})
        traces = {}
        for decode in ("eager", "static"):
            settings = RetroLMSettings(page_size=64, pages_kept=6, local_window=64, reselect_every=8, decode=decode)
            paged = build_paged_context(settings, lm, context, SYSTEM_PROMPT)
            trace: list = []
            query = paged.query_ids(QUESTION)
            runs[decode] = list(paged.stream_ids(query, args.new, trace=trace))
            traces[decode] = [t["pages"] for t in trace]
        rows.append({"dtype": str(dtype), "generator": f"RetroLM ({paged.prefix_len} context tokens, {paged.num_pages} pages)",
                     "match": "all" if runs["eager"] == runs["static"] else f"first {next((i for i, (a, b) in enumerate(zip(runs['eager'], runs['static'])) if a != b), 0)} of {len(runs['eager'])}",
                     "pages": f"{'same' if traces['eager'] == traces['static'] else 'differ'} ({len(traces['eager'])} selections)",
                     "text": lm.tokenizer.decode(runs["static"][:24])})
        print(json.dumps(rows[-2:]), flush=True)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "decode_equal.json"), "w") as f:
            json.dump({"device": args.device, "rows": rows}, f, indent=1)
    print()
    print_table(["dtype", "generator", "greedy tokens equal (eager vs static)", "pages selected", "static output (24 tokens)"],
                [[r["dtype"], r["generator"], r["match"], r["pages"], repr(r["text"])] for r in rows], "lllll")


if __name__ == "__main__":
    main()
