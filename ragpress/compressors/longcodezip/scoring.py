"""LongCodeZip's model calls (Shi et al., ASE 2025, arXiv:2510.00446), written as requests so that
many compressions share forward passes: a compression is a generator that yields a :class:`Score`
(pairs of prefix and continuation whose token log-probs it needs) and receives the answers;
:func:`run_plans` advances every generator to its next request (through the shared lockstep driver,
:mod:`ragpress.core.lockstep`), answers all requests of that step with one length-sorted batched
:meth:`~ragpress.core.lm.CausalLM.continuation_logprobs` call, and repeats. One compression alone
makes exactly the calls it would make unbatched."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import torch

from ragpress.compressors.longcodezip.steps import line_of
from ragpress.core.lm import CausalLM
from ragpress.core.lockstep import run_lockstep


@dataclass
class Score:
    """A request: ``log p(continuation | prefix)`` of every token of each continuation."""

    prefixes: list[str]
    continuations: list[str]


Plan = Generator[Score, list[torch.Tensor], Any]


def run_plans(load_lm: Callable[[], CausalLM], plans: list[Plan], batch_size: int | None) -> list[Any]:
    """The value each plan returns, its requests answered together with those of the other plans
    (:func:`~ragpress.core.lockstep.run_lockstep`, one batched call per step)."""

    def answer(requests: list[Score]) -> list[list[torch.Tensor]]:
        logprobs = load_lm().continuation_logprobs(
            [p for r in requests for p in r.prefixes], [c for r in requests for c in r.continuations], batch_size
        )
        ends = list(itertools.accumulate(len(r.prefixes) for r in requests))
        return [logprobs[end - len(r.prefixes) : end] for r, end in zip(requests, ends)]

    return run_lockstep(plans, answer)


def approximate_mi(lm: CausalLM, contexts: list[str], query: str) -> Generator[Score, list[torch.Tensor], list[float]]:
    """``PPL(q) - PPL(q | c)`` for each context ``c`` (Sec. III-A, the AMI equation); a context
    longer than the model's window keeps its last tokens."""
    room = lm.max_length - lm.count_tokens(query) - 8
    if room < 16:
        raise ValueError(f"The instruction alone nearly fills {lm.name}'s window of {lm.max_length} tokens; shorten it.")
    contexts = [_tail(lm, c, room) for c in contexts]
    answers = yield Score([""] + contexts, [query] * (len(contexts) + 1))
    base = math.exp(-answers[0].mean().item())
    return [base - math.exp(-logprobs.mean().item()) for logprobs in answers[1:]]


def line_bits(lm: CausalLM, functions: list) -> Generator[Score, list[torch.Tensor], list[list[float | None]]]:
    """Mean bits per token of each line given the lines above it in its function (the official
    log2 of line PPL), one forward pass per function, or per window of whole lines when a
    function is longer than the model's window; a token belongs to the line of its last
    character, and blank lines get ``None``."""
    tokenizer, window = lm.tokenizer, lm.max_length - 8
    jobs, results = [], []
    for f, (source, function) in enumerate(functions):
        results.append([None] * (function.last - function.first))
        lengths = [len(ids) + 1 for ids in tokenizer([source.text_of(i, i + 1) for i in range(function.first, function.last)],
                                                    add_special_tokens=False)["input_ids"]]
        first, count = function.first, 0
        for line, n in zip(range(function.first, function.last), lengths):
            if count + n > window and line > first:
                jobs.append((f, first, line))
                first, count = line, 0
            count += n
        jobs.append((f, first, function.last))
    windows = []
    for f, first, last in jobs:
        text = functions[f][0].text_of(first, last)
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"][:window]
        windows.append((text[: offsets[-1][1]] if offsets else text, offsets))
    logprobs = yield Score([""] * len(windows), [w[0] for w in windows])
    sums: dict[tuple[int, int], list[float]] = {}
    for (f, first, last), (_, offsets), values in zip(jobs, windows, logprobs):
        source = functions[f][0]
        starts = [a - source.lines[first][0] for a, _ in source.lines[first:last]]
        for (a, b), value in zip(offsets[len(offsets) - len(values) :], values.tolist()):
            sums.setdefault((f, first + line_of(starts, max(b - 1, a))), []).append(-value / math.log(2))
    for (f, line), values in sums.items():
        if not functions[f][0].is_blank(line):
            results[f][line - functions[f][1].first] = sum(values) / len(values)
    return results


def _tail(lm: CausalLM, text: str, room: int) -> str:
    ids = lm.encode(text)
    return text if len(ids) <= room else lm.tokenizer.decode(ids[-room:])
