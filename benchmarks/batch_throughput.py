"""Throughput of ragpress's batched Meta-Chunking (PPL and margin sampling) and LongCodeZip against
the official code run one document or file at a time, side by side in one run, same model object
(SmolLM2-135M-Instruct in ``--dtype``, float32 by default: bfloat16 rounds a padded batch and a single
row differently, which moves margins near the threshold), same inputs, with agreement, a profile and
our time split by phase (prompts or tokens, forwards, the rest).

Inputs come from ``python -m benchmarks.batch_inputs FILE`` (sentences split here by ragpress and
given to both sides; the official code's NLTK splitter is replaced). The official code is not part
of ragpress: ``--official-mc`` names Meta-Chunking's ``tools/`` folder, ``--official-lcz`` the
folder holding LongCodeZip's ``longcodezip`` package (both unmodified; glue below and in
``benchmarks.meta_chunking``)::

    python -m benchmarks.batch_throughput --inputs inputs.json.gz --official-mc MC/tools --official-lcz LCZ

LongCodeZip runs on the first ``--files`` code files that pass one rule read from the input alone,
every function fits the budget at ``RATE`` (:func:`benchmarks.longcodezip.select_files`, which says
why): on the others our hard-ceiling greedy may keep nothing (``BudgetTooSmallError``) where the
official keeps a function over the budget, a difference by design that no throughput number should
hide. The excluded files are printed with their reason. Each row and number is printed, and written
to ``--json``, as soon as it is measured.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import types
from pathlib import Path

import torch

from benchmarks._common import phases, timed
from benchmarks.longcodezip import chunk_name, jaccard, select_files
from benchmarks.meta_chunking import LegacyCacheModel, load_official, official_margin_ends, pooled_f1, spans_of
from ragpress.chunkers.meta_chunking import MarginSamplingChunker, PerplexityChunker, margin
from ragpress.compressors.longcodezip import LongCodeZip
from ragpress.core.types import Chunk, Document
from ragpress.models import load_causal_lm

RATE = 0.3  # kept fraction of each file's tokens, both sides


def profile(label: str, fn, lm) -> dict:
    """Host-device synchronisations and forward passes of ``fn()`` under torch.profiler."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    calls = []
    real = lm.model.forward
    lm.model.forward = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
    finally:
        del lm.model.forward
    names = [e.name for e in prof.events()]
    out = {"forwards": len(calls), "syncs": sum("Synchronize" in n for n in names),
           "copies_to_host": sum(n in ("Memcpy DtoH (Device -> Pageable)", "Memcpy DtoH (Device -> Pinned)") for n in names),
           "item_calls": sum(n == "aten::item" or n == "aten::_local_scalar_dense" for n in names)}
    print(f"profile {label}: {out}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--official-mc", type=Path, required=True)
    parser.add_argument("--official-lcz", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--files", type=int, default=50, help="code files that pass the rule above")
    parser.add_argument("--json", default=None)
    parser.add_argument("--dtype", default="float32", help="the model's dtype on both sides (bfloat16: the GPU default)")
    args = parser.parse_args()
    data = json.load(gzip.open(args.inputs, "rt"))
    compressor = LongCodeZip(ratio=1 / RATE, fine_ratio=1.0, dtype=args.dtype)
    docs, (tasks, excluded) = data["documents"][: args.documents], select_files(data["code"], compressor, args.files)
    lm = load_causal_lm("smollm2-135m", dtype=args.dtype)
    print(f"{torch.cuda.get_device_name() if lm.device.type == 'cuda' else 'cpu'}; {lm}; attention {lm.model.config._attn_implementation}; "
          f"{len(docs)} documents ({sum(map(len, docs))} sentences), {len(tasks)} code files", flush=True)
    print(f"LongCodeZip files: {len(tasks)} of {args.files} asked for; {len(excluded)} excluded before them by the shared rule "
          f"'every function fits the budget at rate {RATE}' (benchmarks.longcodezip.select_files), each with why in lcz_excluded:", flush=True)
    sync = torch.cuda.synchronize if lm.device.type == "cuda" else (lambda: None)
    report = Report(args.json)
    report.note(lcz_files=len(tasks), lcz_excluded=excluded)

    def clock(fn, *a, **k):
        sync()
        seconds, value = timed(fn, *a, **k)
        sync()
        return seconds, value

    if docs:  # --documents 0 runs LongCodeZip alone
        meta_chunking(report, lm, docs, args.official_mc, clock, args.dtype)
    if tasks:
        longcodezip(report, lm, tasks, compressor, args.official_lcz, clock)
    report.table()


def meta_chunking(report: Report, lm, docs: list[list[str]], tools: Path, clock, dtype: str) -> None:
    """The PPL and margin-sampling rows: the official code one document at a time, ours batched."""
    # --- PPL chunking ---------------------------------------------------------------------------
    official, record = load_official(tools, [])
    legacy = LegacyCacheModel(lm.model)

    def official_ppl():
        out = []
        for sentences in docs:
            official.split_text_by_punctuation = lambda text, language, s=sentences: list(s)
            official.llm_chunker_ppl("".join(sentences), legacy, lm.tokenizer, 0, "en", batch_size=4096, max_txt_size=9000)
            out.append(list(record["minima"]))
        return out

    texts, spans = zip(*(spans_of(s, "") for s in docs))
    ppl = PerplexityChunker(dtype=dtype)
    ppl.lm()
    ours_ppl = lambda: [e[:-1] for e in ppl.meta_chunk_ends(list(texts), list(spans))]  # noqa: E731
    clock(lambda: ppl.meta_chunk_ends(list(texts[:4]), list(spans[:4])))  # warm-up (kernels, allocator)
    off_s, theirs = clock(official_ppl)
    our_s, ours = clock(ours_ppl)
    report.row("PPL chunking", len(docs), off_s, our_s, pooled_f1(ours, theirs))
    report.note(ppl_profile=profile("PPL (8 documents)", lambda: PerplexityChunker(dtype=dtype).meta_chunk_ends(list(texts[:8]), list(spans[:8])), lm))
    report.note(ppl_phases=phases(ours_ppl, lm.device, forwards=(lm.model, "forward")))

    # --- margin sampling --------------------------------------------------------------------------
    official_margin = lambda: official_margin_ends(tools, docs, lm)  # noqa: E731
    mtexts, mspans = zip(*(spans_of(s, " ") for s in docs))
    ms = MarginSamplingChunker(dtype=dtype)
    ours_margin = lambda: [e[:-1] for e in ms.meta_chunk_ends(list(mtexts), list(mspans))]  # noqa: E731
    clock(lambda: ms.meta_chunk_ends(list(mtexts[:4]), list(mspans[:4])))
    off_s, theirs = clock(official_margin)
    our_s, ours = clock(ours_margin)
    report.row("margin sampling", len(docs), off_s, our_s, pooled_f1(ours, theirs))
    report.note(margin_profile=profile("margin (8 documents)", lambda: ms.meta_chunk_ends(list(mtexts[:8]), list(mspans[:8])), lm))
    report.note(margin_phases=phases(ours_margin, lm.device, prompts=(margin, "prompt_ids"), forwards=(lm.model, "forward")))


def longcodezip(report: Report, lm, tasks: list[dict], compressor: LongCodeZip, folder: Path, clock) -> None:
    """The LongCodeZip row (coarse stage; ``rank_only`` on the official side, one file at a time) and our fine stage's time."""
    # --- LongCodeZip (coarse stage, rank_only on the official side) ---------------------------------
    instance = official_lcz(folder, lm)
    codes, queries = [t["code"] for t in tasks], [t["instruction"] for t in tasks]
    chunk_lists = [[Chunk.of(Document(c, id=f"f{i}"), 0, len(c))] for i, c in enumerate(codes)]

    def official_files():
        return [instance.compress_code_file(code=c, query=q, instruction="", rate=RATE, rank_only=True) for c, q in zip(codes, queries)]

    clock(lambda: compressor.run_batch(queries[:4], chunk_lists[:4]))  # the rule's files: each keeps a function
    off_s, theirs = clock(official_files)
    our_s, ours = clock(lambda: compressor.run_batch(queries, chunk_lists))
    fn_j, top5 = [], []
    for code, mine, result in zip(codes, ours, theirs):
        chunks = instance.split_code_by_functions(code, language="python")
        mine_kept = {f["name"].split(".")[-1] for f in mine.metadata["functions"] if f["selected"]}
        fn_j.append(jaccard(mine_kept, {chunk_name(chunks[i]) for i in result["selected_functions"]}))
        mine_top = [f["name"].split(".")[-1] for f in sorted(mine.metadata["functions"], key=lambda f: f["rank"])[:5]]
        top5.append(len(set(mine_top) & {chunk_name(chunks[i]) for i, _ in result["demonstrations_sort"][:5]}))
    report.row("LongCodeZip coarse", len(tasks), off_s, our_s, sum(fn_j) / len(fn_j))
    report.note(lcz_top5_overlap_mean=sum(top5) / len(top5))
    fine = LongCodeZip(ratio=1 / RATE, fine_ratio=2.0, dtype=compressor.dtype)
    fine_s, _ = clock(lambda: fine.run_batch(queries, chunk_lists))
    report.note(lcz_ours_fine_seconds=fine_s)
    report.note(lcz_profile=profile("LongCodeZip (4 files, fine)", lambda: fine.run_batch(queries[:4], chunk_lists[:4]), lm))
    report.note(lcz_phases=phases(lambda: compressor.run_batch(queries, chunk_lists), lm.device, forwards=(lm.model, "forward")))


class Report:
    """The comparison's rows and numbers, each printed and written to ``path`` (JSON, when given) as
    soon as it is measured, so that a crash or a timeout later keeps what was measured."""

    HEADER = f"{'stage':20} {'items':>5} {'official s':>10} {'ours s':>8} {'off. items/s':>12} {'ours items/s':>12} {'speed-up':>8} {'agreement':>9}"

    def __init__(self, path: str | None):
        self.path, self.rows, self.results = path, [], {}

    def row(self, name: str, n: int, off_s: float, our_s: float, agree: float) -> None:
        self.rows.append((name, n, off_s, our_s, agree))
        print(f"{self.HEADER}\n{self.line(self.rows[-1])}", flush=True)
        self.save()

    def note(self, **numbers) -> None:
        self.results.update(numbers)
        print(json.dumps(numbers), flush=True)
        self.save()

    def save(self) -> None:
        if self.path:
            Path(self.path).write_text(json.dumps({"rows": self.rows, **self.results}, indent=1))

    def table(self) -> None:
        print("\n" + "\n".join([self.HEADER, *map(self.line, self.rows)]))
        print("agreement: boundary F1 (pooled over documents) for Meta-Chunking; mean Jaccard of kept functions for LongCodeZip", flush=True)

    @staticmethod
    def line(row: tuple) -> str:
        name, n, off_s, our_s, agree = row
        return f"{name:20} {n:5d} {off_s:10.2f} {our_s:8.2f} {n / off_s:12.2f} {n / our_s:12.2f} {off_s / our_s:7.1f}x {agree:9.3f}"


def official_lcz(folder: Path, lm):
    """The official ``LongCodeZip`` object around our model and tokenizer (its constructor would
    download Qwen models): the attributes its ``__init__`` sets, with ``loguru`` stubbed."""
    quiet = types.SimpleNamespace(**{k: (lambda *a, **kw: None) for k in ("debug", "info", "warning", "error", "remove", "add")})
    sys.modules.setdefault("loguru", types.SimpleNamespace(logger=quiet))
    sys.path.insert(0, str(folder))
    import longcodezip

    instance = object.__new__(longcodezip.LongCodeZip)
    lm.tokenizer.padding_side = "left"
    instance.model, instance.tokenizer, instance.model_name, instance.device = lm.model, lm.tokenizer, "smollm2-135m", "cuda"
    instance.model_config = {}
    entropy = object.__new__(longcodezip.EntropyChunking)
    entropy.model, entropy.tokenizer, entropy.device = lm.model, lm.tokenizer, lm.device
    instance.entropy_chunking = entropy
    instance.cache = {k: {} for k in ("token_length", "encodings", "perplexity", "conditional_ppl", "context_rankings")}
    instance.max_cache_size = 1000
    instance.max_position_embeddings = lm.max_length
    instance.cache_bos_num, instance.prefix_bos_num, instance.context_idxs = 10, 100, []
    return instance


if __name__ == "__main__":
    main()
