"""``ragpress demo``: answers over the Python language reference with the kept sentences shown in
their source, the tokens saved and each stage's time; ``--compare`` answers the same questions
with the full retrieved passages beside the pruned ones."""

from __future__ import annotations

import sys
import time

from ragpress.core.bundled import cache_dir
from ragpress.core.types import check_provenance
from ragpress.demo.pipeline import demo_pipeline, load_models, python_reference, uncompressed
from ragpress.demo.questions import QUESTIONS
from ragpress.demo.show import passages, side_by_side, tokens_line
from ragpress.pipelines.graph import Pipeline


def prepare(top_k: int, budget: int, max_new_tokens: int, compress: str, say) -> tuple[Pipeline, float]:
    """The demo pipeline, indexed (from the cache after the first run) and its models loaded; the
    seconds the loading took."""
    documents = python_reference()
    say(f"Corpus: the Python language reference (pydoc_data.topics), {len(documents)} topics, "
        f"{sum(len(d.text) for d in documents):,} characters.")
    rag = demo_pipeline(top_k, budget, max_new_tokens, compress)
    say(repr(rag))
    start = time.perf_counter()
    chunks = rag.index(documents, cache=cache_dir() / "demo-index")
    say(f"Indexed {len(chunks)} chunks in {time.perf_counter() - start:.1f} s "
        f"(the first run converts the bundled models and embeds the corpus; later runs load both from {cache_dir()}).")
    load_s = load_models(rag)
    say(f"Loaded the models in {load_s:.1f} s, once, before any question is timed (its own line in the first table).")
    return rag, load_s


def run_demo(questions: tuple[str, ...] = QUESTIONS, top_k: int = 8, budget: int = 384, max_new_tokens: int = 48,
             compress: str = "provence", colour: bool | None = None, out=sys.stdout) -> list:
    """Answer ``questions`` one at a time and print each answer, the retrieved passages with the kept
    text highlighted (ANSI colour when ``out`` is a terminal, ``[[...]]`` otherwise), the tokens
    retrieved, kept and saved, and the per-stage times."""
    say = lambda *parts: print(*parts, file=out, flush=True)  # noqa: E731
    colour = out.isatty() if colour is None else colour
    rag, load_s = prepare(top_k, budget, max_new_tokens, compress, say)
    results = []
    for i, question in enumerate(questions):
        result = rag.run(question)
        answer = result.output
        check_provenance(answer.sources, rag.documents)
        say(f"\nQ: {result.query}\nA: {answer.text}")
        say(f"Kept text{' (bold green; the rest dimmed)' if colour else ' inside [[ ]]'}, "
            f"{len(answer.sources)} spans, offsets checked against the source text:")
        say(passages(result.outputs["fuse"], answer.context, colour))
        say(tokens_line(answer.context))
        say(result.table(setup=[("load models", load_s)] if i == 0 else ()))
        results.append(result)
    return results


def run_compare(questions: tuple[str, ...] = QUESTIONS, top_k: int = 8, budget: int = 384, max_new_tokens: int = 48,
                compress: str = "provence", width: int = 100, out=sys.stdout) -> list[tuple]:
    """Answer each question twice, with the same retrieval and generator: from the compressed context
    and from every retrieved passage whole; print the two answers side by side with the tokens each
    prompt had and the seconds each run took. Returns ``(compressed, full)`` result pairs."""
    say = lambda *parts: print(*parts, file=out, flush=True)  # noqa: E731
    rag, _ = prepare(top_k, budget, max_new_tokens, compress, say)
    full = uncompressed(rag)
    pairs = []
    for question in questions:
        pair = (rag.run(question), full.run(question))
        columns = [
            (f"{label}: {r.output.context.tokens_after} context tokens, {r.output.prompt_tokens} prompt tokens, {r.seconds:.1f} s",
             r.output.text)
            for label, r in zip((f"WITH {type(rag.nodes['compress'].stage).__name__}", "WITHOUT compression (full passages)"), pair)
        ]
        say(f"\nQ: {question}")
        say(side_by_side(*columns, width=width))
        pairs.append(pair)
    return pairs
