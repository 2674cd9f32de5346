"""ARC-Encoder quality on held-apart text: the frozen decoder with the full context, with the
context compressed 4x and 8x by an ARC-Encoder checkpoint, and with no context.

Three measures on documents kept out of training (the held-out split of :mod:`ragpress.corpora`):
- ``lm``: next-token NLL of the 64 tokens that follow a 256-token window, as plain text (Fig. 2b);
- ``chat``: NLL of the same 64 tokens as the answer to "Continue the text of the sources." in the
  generator's own chat prompt (what ``TransformersGenerator`` sends);
- ``title``: NLL and greedy accuracy (title contained in the reply) of naming a held-out Wikipedia
  article from its first 256 tokens, through ``TransformersGenerator.run``.

    python -m benchmarks.arc_quality --checkpoint arc-smollm2 --limit 8     # CPU, a few minutes
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from benchmarks._common import print_table
from ragpress import corpora
from ragpress.compressors.arc_encoder import ArcEncoder
from ragpress.compressors.arc_encoder.train import CONTINUE, TITLE, decoder_nll, prompt_embeds
from ragpress.core.types import Chunk, Context, Document
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.models import load_causal_lm


def windows(docs, tokenizer, context: int, after: int, limit: int):
    out = []
    for doc in docs:
        ids = tokenizer(doc["text"], add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids) - context - after, 4 * (context + after)):
            out.append((ids[start : start + context], ids[start + context : start + context + after]))
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def nll_table(lm, arcs, pairs, chat: bool, batch: int = 16) -> dict[str, float]:
    """Mean NLL per target token under each condition."""
    bos = lm.embed(torch.tensor([lm.tokenizer.bos_token_id]))
    head, tail = prompt_embeds(lm, CONTINUE)
    decode = lm.tokenizer.decode
    totals, count = {}, sum(len(t) for _, t in pairs)
    for i in range(0, len(pairs), batch):
        group = pairs[i : i + batch]
        targets = [t + [lm.tokenizer.eos_token_id] if chat else t for _, t in group]
        conditions = {"none": [[] for _ in group], "full": [[lm.embed(torch.tensor(c))] for c, _ in group]}
        for name, arc in arcs.items():
            conditions[name] = [[arc.compress("q", [Chunk("d", 0, len(decode(c)), decode(c))]).embeddings] for c, _ in group]
        for name, middles in conditions.items():
            if chat:
                if name == "full":
                    texts = [decode(c) for c, _ in group]
                    prefixes = [[lm.embed(lm.chat_ids(TransformersGenerator(model=lm.name).messages(Context(CONTINUE, pieces=(Chunk("d", 0, len(t), t),))))[0])] for t in texts]
                elif name == "none":
                    prefixes = [[lm.embed(lm.chat_ids(TransformersGenerator(model=lm.name).messages(Context(CONTINUE)))[0])] for _ in group]
                else:
                    prefixes = [[head, m[0], tail] for m in middles]
            else:
                prefixes = [[bos, *m] for m in middles]
            with torch.inference_mode():
                totals[name] = totals.get(name, 0.0) + decoder_nll(lm, prefixes, targets).sum().item()
    count += len(pairs) if chat else 0
    return {name: total / count for name, total in totals.items()}


def titles(lm, arcs, docs, tokenizer, limit: int) -> dict[str, tuple[float, float]]:
    generator = TransformersGenerator(model=lm.name, max_new_tokens=16)
    out = {}
    for name in ("none", "full", *arcs):
        hits, nll, tokens = 0, 0.0, 0
        for doc in docs[:limit]:
            text = tokenizer.decode(tokenizer(doc["text"], add_special_tokens=False)["input_ids"][:256])
            chunk = Chunk.of(Document(text, id="d"), 0, len(text))
            context = {"none": Context(TITLE), "full": Context(TITLE, pieces=(chunk,))}.get(name) or arcs.get(name, None).compress(TITLE, [chunk])
            reply = generator.run(context).text
            hits += doc["title"].lower() in reply.lower()
            prompt = generator._prompt(context)[1][0]  # the exact prompt the generator sends
            prompt = prompt if prompt.is_floating_point() else lm.embed(prompt)
            target = lm.encode(doc["title"]) + [lm.tokenizer.eos_token_id]
            with torch.inference_mode():
                nll += decoder_nll(lm, [[prompt]], [target]).item()
            tokens += len(target)
        out[name] = (nll / tokens, hits / min(limit, len(docs)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="arc-smollm2")
    parser.add_argument("--decoder", default="smollm2-135m")
    parser.add_argument("--corpus", help="JSON-lines corpus (default: the offline corpus)")
    parser.add_argument("--limit", type=int, default=200, help="continuation windows (default 200)")
    parser.add_argument("--titles", type=int, default=20, help="held-out Wikipedia articles to name (default 20)")
    parser.add_argument("--ratios", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()

    started = time.perf_counter()
    lm = load_causal_lm(args.decoder)
    held = [d for d in corpora.load(args.corpus) if d["split"] == "heldout"]
    arcs = {f"arc{f}": ArcEncoder(decoder=args.decoder, checkpoint=args.checkpoint, ratio=f) for f in args.ratios}
    pairs = windows(held, lm.tokenizer, 256, 64, args.limit)
    results = {"lm": nll_table(lm, arcs, pairs, chat=False), "chat": nll_table(lm, arcs, pairs, chat=True)}
    wiki = [d for d in held if d["source"] == "wikipedia"]
    results["title"] = titles(lm, arcs, wiki, lm.tokenizer, args.titles)
    print(f"\nARC-Encoder quality, {args.checkpoint} -> {args.decoder} on {lm.device}; {len(pairs)} held-out windows "
          f"(256 context + 64 continuation tokens), {min(args.titles, len(wiki))} held-out articles; {time.perf_counter() - started:.0f} s")
    table = []
    for name in ("full", *arcs, "none"):
        rows = {"full": "256", "none": "0"}.get(name) or f"{math.ceil(256 / int(name[3:])) + 1}"
        lm_nll, chat_nll, (title_nll, acc) = results["lm"][name], results["chat"][name], results["title"][name]
        table.append([name, rows, f"{lm_nll:.3f}", f"{math.exp(lm_nll):.1f}", f"{chat_nll:.3f}", f"{title_nll:.3f}", f"{acc:.2f}"])
    print_table(["context", "rows", "LM NLL", "LM ppl", "chat NLL", "title NLL", "title acc"], table)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results | {"windows": len(pairs), "checkpoint": args.checkpoint, "decoder": args.decoder}, handle, indent=1)


if __name__ == "__main__":
    main()
