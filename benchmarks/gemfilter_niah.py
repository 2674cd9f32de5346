"""Needle in a haystack for GemFilter's selection (CPU): does the filter layer keep the needle?

The paper's needle test (Sec. 4; official needle_eval.py): Paul Graham essays as the haystack, the
needle "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny
day." inserted at a sentence boundary at each depth, the question at the end of the prompt. Here
the model is the bundled SmolLM2-135M-Instruct (30 layers, 8K positions), the prompt is the one
ragpress generators build (the haystack is one source), and we score the *selection* directly: the
share of the needle's characters inside the selected spans (100 = the whole sentence kept).

    python -m benchmarks.gemfilter_niah [--layers 12 20] [--ks 256 1024]
"""

from __future__ import annotations

import argparse
import time

from tqdm import tqdm

from benchmarks._common import NEEDLE, QUESTION, haystack, print_table
from ragpress.compressors.gemfilter import filter_layer_index, select_tokens
from ragpress.core.attention import last_row_logits
from ragpress.core.prompt import PromptLayout
from ragpress.core.types import Chunk, Context
from ragpress.generators.base import Generator
from ragpress.models import load_causal_lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8000])
    parser.add_argument("--depths", type=float, nargs="+", default=[0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--ks", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--layers", type=int, nargs="+", default=None, help="0-based filter layers (default: the paper's 13/32 depth)")
    args = parser.parse_args()

    lm = load_causal_lm("smollm2-135m", device="cpu")
    layers = args.layers or [filter_layer_index(lm.model.config.num_hidden_layers)]
    recall: dict[tuple[int, int, int, float], float] = {}
    started = time.perf_counter()
    cells = [(n, d) for n in args.lengths for d in args.depths]
    for n, depth in tqdm(cells, desc="haystacks"):
        doc, start = haystack(lm.tokenizer, n, depth)
        chunk = Chunk.of(doc, 0, len(doc.text))
        layout = PromptLayout.build(lm, Generator().messages(Context(query=QUESTION, pieces=[chunk])), [chunk])
        for layer in layers:
            logits = last_row_logits(lm.model, layout.ids[None], layer)
            for k in args.ks:
                selected, scores = select_tokens(logits, k, 5, layout.sources)
                kept = sum(max(0, min(start + len(NEEDLE), p.end) - max(start, p.start)) for p in layout.spans(selected, scores))
                recall[layer, k, n, depth] = kept / len(NEEDLE)
    print(f"\nSmolLM2-135M-Instruct, {len(cells)} haystacks in {time.perf_counter() - started:.0f}s; "
          "cells: % of the needle's characters kept in the selection")
    for layer in layers:
        for k in args.ks:
            print(f"\nfilter layer {layer} of {lm.model.config.num_hidden_layers}, k={k}")
            print_table(["tokens", *(f"depth {d:.0%}" for d in args.depths)],
                        [[n, *(f"{recall[layer, k, n, d]:.0%}" for d in args.depths)] for n in args.lengths], "r" * (1 + len(args.depths)))


if __name__ == "__main__":
    main()
