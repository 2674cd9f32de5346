"""LongCodeZip: two-stage compression of long code contexts for code LMs.

Shi, Qian, Zhang, Shen, Gu, "LongCodeZip: Compress Long Context for Code Language Models", ASE 2025
(arXiv:2510.00446); official code github.com/YerbaPage/LongCodeZip. Only the paper's abstract and
overview could be read when this was written, so the steps follow its method outline (Sec. III-A coarse,
Sec. III-B fine) and, for every constant and rule, the official ``compress_code_file``:

1. Coarse (Sec. III-A): cut each code chunk into function-level chunks, score each by approximated
   mutual information with the instruction, ``AMI(c, q) = PPL(q) - PPL(q | c)``, and keep the best
   in rank order while they fit the coarse budget ``B * fine_ratio``.
2. Fine (Sec. III-B): cut every kept function of at least ``min_lines`` lines into blocks at line
   perplexity spikes, give it a share of the budget that grows with its AMI (``importance_beta``),
   score its blocks by AMI and keep the best set under that share with an exact 0/1 knapsack. A
   function that splits into fewer than ``min_lines`` non-blank blocks is kept whole, as the
   official code does (its blocks are too coarse to choose from; the last pass below drops whole
   units if that overruns the budget), unless it alone exceeds the budget: then its blocks are
   the only way to keep any of it, so the knapsack runs.

Deviations, each for a stated reason:
- ``B`` is a hard ceiling: the official adds 100 tokens of slack, lets the function that crosses the
  coarse budget in, and keeps forced blocks over a function's share. Here the coarse stage stops
  before the first function that does not fit, and a last pass drops kept units, blocks of the
  least relevant function first (its non-forced blocks before its forced ones), until the exact token count of
  ``Context.text`` is within ``B``.
- The budget is the final one: the coarse stage gets ``B * fine_ratio`` and the fine stage shares
  ``B`` by tokens. The official gives the coarse stage ``B`` and the fine stage ``R_fine`` of the
  kept *lines* (``R_fine = 1 / fine_ratio``), so its output lands near ``B / fine_ratio``.
- Line perplexities come from one forward pass per function (every line conditioned on the lines
  above it), not one pass per line; blank lines get no score and never end a block.
- The knapsack is always exact (the official falls back to greedy above 100 blocks or 2000 tokens).
- Dropped code is not replaced by ``# ...`` markers: pieces stay exact source spans, and
  ``Context.text`` joins them with a blank line, which marks every gap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator
from typing import ClassVar

from ragpress.compressors.base import Compressor
from ragpress.compressors.longcodezip.scoring import Plan, Score, approximate_mi, line_bits, run_plans
from ragpress.compressors.longcodezip.steps import (
    CodeSource,
    adaptive_shares,
    is_structural,
    kept_pieces,
    knapsack,
    spike_blocks,
)
from ragpress.core.errors import BudgetTooSmallError
from ragpress.core.loaders import load_causal_lm
from ragpress.core.types import Chunk, Context, Document

JOIN = "\n\n"


@dataclasses.dataclass
class _Unit:
    """Lines ``first:last`` of input chunk ``chunk`` that are kept or dropped together."""

    chunk: int
    first: int
    last: int
    priority: tuple[float, bool, float]  # (function AMI, forced, block AMI): lowest goes first


@dataclasses.dataclass
class LongCodeZip(Compressor):
    """Compress code chunks for an instruction (the query) to ``budget`` tokens, or by ``ratio``
    (input tokens per kept token) when no budget is given. Budgets are counted with ``model``'s tokenizer
    on ``Context.text`` (the kept pieces joined by a blank line, no special tokens)."""

    model: str = "smollm2-135m"
    method: ClassVar[str] = "longcodezip"
    budget: int | None = None
    ratio: float = 2.0
    fine_ratio: float = 2.0  # coarse tokens per kept token, 1 / the paper's R_fine (0.5 and 0.8 in its runs); 1 = coarse only
    importance_beta: float = 0.5  # beta of the adaptive budget allocation (Sec. III-B)
    spike_k: float = 0.2  # the block-boundary threshold factor (official default k=0.2)
    min_lines: int = 5  # functions with fewer non-blank lines, or blocks, are kept whole (official default)
    keep_structure: bool = True  # always keep definition, comment and return blocks (official)
    language: str = "python"  # per chunk, ``chunk.metadata["language"]`` wins
    batch_size: int | None = None  # rows per forward pass; None: as many as fit the device (core.device.token_budget)
    device: str | None = None
    dtype: str | None = None  # default: bfloat16 on GPU, float32 on CPU

    def __post_init__(self):
        if self.budget is not None and (not isinstance(self.budget, int) or self.budget <= 0):
            raise ValueError(f"budget must be a positive int of tokens, got {self.budget!r}; pass e.g. budget=512, or ratio=3.")
        for name in ("ratio", "fine_ratio"):
            if not isinstance(getattr(self, name), (int, float)) or not getattr(self, name) >= 1:
                raise ValueError(f"{name} is tokens in per token out and must be >= 1, got {getattr(self, name)!r}.")
        if not 0 <= self.importance_beta <= 1:
            raise ValueError(f"importance_beta must be in [0, 1], got {self.importance_beta!r}.")
        if self.spike_k < 0 or self.min_lines < 1 or (self.batch_size is not None and self.batch_size < 1):
            raise ValueError("spike_k must be >= 0, min_lines >= 1 and batch_size >= 1 (or None to fit the device).")

    def compress_code(self, code: str, instruction: str) -> Context:
        """Compress one code text; the pieces' offsets index into ``code`` itself."""
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, got {type(code).__name__}.")
        document = Document(code)
        return self.run(instruction, [Chunk.of(document, 0, len(code))])

    def compress(self, query: str, chunks: list[Chunk]) -> Context:
        return self.compress_batch([query], [chunks])[0]

    def compress_batch(self, queries: list[str], chunks: list[list[Chunk]]) -> list[Context]:
        """:meth:`compress` for each (query, chunks) pair, every step's scoring of all pairs (the AMI of
        all functions of all files, then their line perplexities, then their blocks' AMI) sharing
        length-sorted forward passes of ``batch_size`` rows (:mod:`.scoring`)."""
        return run_plans(self._lm, [self._plan(q, c) for q, c in zip(queries, chunks, strict=True)], self.batch_size)

    def _lm(self):
        return load_causal_lm(self.model, device=self.device, dtype=self.dtype)

    def _plan(self, query: str, chunks: list[Chunk]) -> Plan:
        """The compression of ``chunks`` for ``query``, yielding its scoring requests (:mod:`.scoring`)."""
        tokens_before = self.count_tokens(JOIN.join(c.text for c in chunks)) if chunks else 0
        budget = self.budget if self.budget is not None else math.floor(tokens_before / self.ratio)
        meta = {"budget": budget, "budget_from": "budget" if self.budget is not None else f"ratio={self.ratio}",
                "token_count": "tokenizer(Context.text, add_special_tokens=False); pieces joined by '\\n\\n'"}
        if tokens_before == 0 or budget >= tokens_before:
            why = "empty input" if tokens_before == 0 else "budget >= input tokens"
            return Context(query, tuple(chunks), tokens_before=tokens_before, tokens_after=tokens_before, metadata={**meta, "unchanged": why})
        if budget <= 0:
            raise BudgetTooSmallError(f"ratio={self.ratio} of {tokens_before} input tokens leaves a budget of 0 tokens; lower ratio or set budget.")

        lm = self._lm()
        sources = [CodeSource(c, self._language(c), k) for k, c in enumerate(chunks)]
        functions = [(s, f) for s in sources for f in s.functions]
        texts = [s.text_of(f.first, f.last) for s, f in functions]
        ami = yield from approximate_mi(lm, [t + JOIN for t in texts], query)
        sizes = [self.count_tokens(t) for t in texts]

        # Sec. III-A: greedy by AMI under the coarse budget, stopping at the first that does not fit.
        coarse_budget = math.floor(budget * self.fine_ratio)
        order = sorted(range(len(functions)), key=lambda i: -ami[i])
        kept, used = [], 0
        for i in order:
            if used + sizes[i] > coarse_budget:
                break
            kept.append(i)
            used += sizes[i]
        units = (yield from self._fine(lm, query, functions, kept, ami, sizes, budget)) if self.fine_ratio > 1 else [
            _whole(functions[i], ami[i]) for i in kept]
        pieces, tokens_after, dropped = self._fit(sources, units, budget, ami, functions)
        if not pieces:
            raise BudgetTooSmallError(f"A budget of {budget} tokens is too small to keep any block of this code (the smallest "
                             f"function has {min(sizes)} tokens); raise budget or lower ratio.")
        rank = {i: r for r, i in enumerate(order)}
        meta.update(
            coarse_budget=coarse_budget,
            splitter=sorted({s.note for s in sources}),
            parse_fallback=[s.index for s in sources if "syntax error" in s.note],
            functions=[{"chunk": s.index, "name": f.name, "lines": (f.first, f.last), "tokens": sizes[i],
                        "ami": ami[i], "rank": rank[i], "selected": i in kept} for i, (s, f) in enumerate(functions)],
            units_dropped_to_fit=dropped,
        )
        return Context(query, tuple(pieces), tokens_before=tokens_before, tokens_after=tokens_after, metadata=meta)

    def _language(self, chunk: Chunk) -> str:
        return str(chunk.metadata.get("language", self.language))

    def _fine(self, lm, query, functions, kept, ami, sizes, budget) -> Generator[Score, list, list[_Unit]]:
        """Sec. III-B: adaptive shares, perplexity blocks, block AMI and knapsack per function."""
        small = [i for i in kept if functions[i][0].nonblank(functions[i][1]) < self.min_lines]
        large = [i for i in kept if i not in small]
        room = budget - sum(sizes[i] for i in small)
        shares = adaptive_shares([ami[i] for i in large], [sizes[i] for i in large], room, self.importance_beta)
        units = [_whole(functions[i], ami[i]) for i in small]
        units += [_whole(functions[i], ami[i]) for i, share in zip(large, shares) if share >= 0.999]
        squeeze = [(i, share) for i, share in zip(large, shares) if share < 0.999]
        if not squeeze:
            return units
        bits = yield from line_bits(lm, [functions[i] for i, _ in squeeze])
        blocks, split = [], []  # blocks: (function index, first line, last line) in chunk line numbers
        for (i, share), per_line in zip(squeeze, bits):
            cuts = spike_blocks(per_line, self.spike_k)
            if sum(any(v is not None for v in per_line[a:b]) for a, b in cuts) < self.min_lines and sizes[i] <= budget:
                units.append(_whole(functions[i], ami[i]))  # too few blocks to choose from: kept whole, as officially
                continue
            first = functions[i][1].first
            blocks += [(i, first + a, first + b) for a, b in cuts]
            split.append((i, share))
        if not split:
            return units
        squeeze = split
        block_texts = [functions[i][0].text_of(a, b) for i, a, b in blocks]
        scores = yield from approximate_mi(lm, [t + JOIN for t in block_texts], query)
        weights = [self.count_tokens(t + "\n") for t in block_texts]
        for i, share in squeeze:
            source = functions[i][0]
            mine = [b for b, block in enumerate(blocks) if block[0] == i]
            # a structural block is forced only while it fits the function's share: a block that holds the
            # signature and most of the body would otherwise overrun the budget and be dropped whole by _fit
            forced = [b for b in mine if self.keep_structure and weights[b] <= share * sizes[i]
                      and is_structural(source.first_nonblank(*blocks[b][1:]), source.language)]
            free = [b for b in mine if b not in forced]
            capacity = math.floor(share * sizes[i]) - sum(weights[b] for b in forced)
            chosen = knapsack([weights[b] for b in free], [scores[b] for b in free], capacity)
            units += [_Unit(source.index, blocks[b][1], blocks[b][2], (ami[i], b in forced, scores[b]))
                      for b in forced + [free[j] for j in chosen]]
        return units

    def _fit(self, sources, units, budget, ami, functions):
        """Assemble pieces from kept lines, then drop lowest-priority units until the exact count
        of ``Context.text`` fits the budget (token counts of parts do not add up exactly). A unit
        larger than the whole budget (a function kept whole) goes first: it could never stay."""
        size = {id(u): self.count_tokens(sources[u.chunk].text_of(u.first, u.last)) for u in units}
        fitting = sorted((u for u in units if size[id(u)] <= budget), key=lambda u: u.priority, reverse=True)
        dropped, units = len(units) - len(fitting), fitting
        while True:
            pieces = kept_pieces(sources, units, functions, ami)
            tokens = self.count_tokens(JOIN.join(p.text for p in pieces))
            if tokens <= budget:
                return pieces, tokens, dropped
            over = tokens - budget
            while units and over > 0:  # drop about as many tokens as we are over, then recount
                over -= size[id(units.pop())]
                dropped += 1


def _whole(function, ami: float) -> _Unit:
    source, f = function
    return _Unit(source.index, f.first, f.last, (ami, False, ami))
