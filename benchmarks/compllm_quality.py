"""CompLLM quality on held-apart text: the decoder's next-token loss on the continuation of a window
of text, given the full context, CompLLM's concept embeddings (2x), or no context, side by side.

Windows come from documents (essays, articles, reference topics, docstrings) that training never saw
(the held-apart split of :mod:`ragpress.corpora`). Each window is ``--context``
tokens of text, then ``--answer`` tokens to predict, in the generator's own prompt with the question
"Continue the text ...". The compressed context goes through the public :class:`CompLLM` stage.

    python -m benchmarks.compllm_quality --limit 24                 # CPU, shipped checkpoint
    python -m benchmarks.compllm_quality --checkpoint DIR --limit 400
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from benchmarks._common import print_table
from ragpress import corpora
from ragpress.compressors.compllm import CompLLM
from ragpress.compressors.compllm.train import CONTINUE, Windows, answer_pass, answer_scores
from ragpress.core.prompt import soft_prompt_ids
from ragpress.core.types import Chunk, Document
from ragpress.models import load_causal_lm


def contexts_for(mode: str, windows, lm, stages: dict[str, CompLLM]) -> list[torch.Tensor]:
    if mode == "full context":
        ids = lm.tokenizer([w.context for w in windows], add_special_tokens=False)["input_ids"]
        return [lm.embed(torch.tensor(i)) for i in ids]
    if mode == "no context":
        return [torch.empty(0, lm.model.config.hidden_size) for _ in windows]
    return [stages[mode].run(CONTINUE, [Chunk.of(Document(w.context), 0, len(w.context))]).embeddings for w in windows]


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder", default="smollm2-135m")
    parser.add_argument("--checkpoint", default="auto", help="CompLLM checkpoint directory (default: the shipped one)")
    parser.add_argument("--corpus", help="corpus .jsonl.gz (default: collect the offline text)")
    parser.add_argument("--limit", type=int, default=200, help="held-apart windows to score")
    parser.add_argument("--context", type=int, default=400, help="context tokens per window")
    parser.add_argument("--answer", type=int, default=32, help="continuation tokens scored per window")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    started = time.perf_counter()
    lm = load_causal_lm(args.decoder)
    docs = [d for d in corpora.load(args.corpus) if d["split"] == "heldout"]
    windows = Windows(docs, lm.tokenizer, (args.context, args.context), args.answer).spread(args.limit)
    head, tail = soft_prompt_ids(lm, CONTINUE)
    stages = {
        "CompLLM 2x": CompLLM(decoder=args.decoder, checkpoint=args.checkpoint),
        "CompLLM 2x, untrained adapters": CompLLM(decoder=args.decoder, checkpoint="untrained"),
    }
    modes = ["full context", "CompLLM 2x", "CompLLM 2x, untrained adapters", "no context"]
    scores = {m: {"loss": [], "acc": [], "rows": []} for m in modes}
    for start in range(0, len(windows), args.batch):
        batch = windows[start : start + args.batch]
        answers = torch.tensor([w.answer for w in batch])
        for mode in modes:
            contexts = contexts_for(mode, batch, lm, stages)
            loss, acc = answer_scores(answer_pass(lm.model, head, tail, contexts, answers, states=False)[1], answers)
            scores[mode]["loss"] += loss.tolist()
            scores[mode]["acc"] += acc.tolist()
            scores[mode]["rows"] += [len(c) for c in contexts]
    full, none, comp = (statistics.mean(scores[m]["loss"]) for m in ("full context", "no context", "CompLLM 2x"))
    beats_none = statistics.mean(float(c < n) for c, n in zip(scores["CompLLM 2x"]["loss"], scores["no context"]["loss"]))
    sources = sorted({w.source.split("/")[0] for w in windows})
    summary = {
        "decoder": args.decoder, "checkpoint": args.checkpoint, "windows": len(windows), "sources": sources,
        "context_tokens": args.context, "answer_tokens": args.answer, "seconds": round(time.perf_counter() - started, 1),
        "gap_closed": (none - comp) / (none - full), "compllm_beats_no_context": beats_none,
        "modes": {m: {"nll": statistics.mean(s["loss"]), "acc": statistics.mean(s["acc"]), "rows": statistics.mean(s["rows"])} for m, s in scores.items()},
    }
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "compllm_quality.json"), "w") as f:
            json.dump(summary | {"per_window": scores}, f)
    print(f"{len(windows)} held-apart windows from {', '.join(sources)}; {args.context} context tokens, "
          f"{args.answer} scored; decoder {args.decoder}; {summary['seconds']} s")
    print()
    print_table(["context given", "context rows", "answer NLL (nats/token)", "perplexity", "top-1 next-token acc"], [
        [mode, f"{s['rows']:.0f}", f"{s['nll']:.3f}", f"{2.718281828 ** s['nll']:.1f}", f"{s['acc']:.1%}"]
        for mode, s in summary["modes"].items()], "lrrrr")
    print(f"\nCompLLM closes {summary['gap_closed']:.0%} of the gap from no context to full context; "
          f"its loss is below no-context on {beats_none:.0%} of windows.")


if __name__ == "__main__":
    main()
