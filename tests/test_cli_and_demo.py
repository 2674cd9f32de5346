import io
import math
import subprocess
import sys
import time

import pytest

from ragpress.core import check_provenance


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "ragpress.cli", "--help"], capture_output=True, text=True, check=True).stdout
    assert "demo" in out and "stages" in out


def test_stages_lists_each_stage_with_its_source(capsys):
    from ragpress.cli import main

    main(["stages"])
    out = capsys.readouterr().out
    assert "retrievers.fusion.ReciprocalRankFusion" in out and "Cormack" in out
    assert "chunkers.meta_chunking.MetaChunker\n" not in out  # a shared base, not a stage to use


def test_demo_command_passes_its_options_to_the_demo_or_the_comparison(monkeypatch):
    import ragpress.demo
    from ragpress.cli import main

    calls = []
    for name in ("run_demo", "run_compare"):
        monkeypatch.setattr(ragpress.demo, name, lambda questions, name=name, **options: calls.append((name, questions, options)))
    main(["demo", "--top-k", "5", "--budget", "200", "--compressor", "budget", "Why?"])
    main(["demo", "--compare"])
    assert calls[0] == ("run_demo", ("Why?",), {"top_k": 5, "budget": 200, "compress": "budget"})
    assert calls[1] == ("run_compare", ragpress.demo.QUESTIONS, {"top_k": 8, "budget": 384, "compress": "provence"})


@pytest.mark.integration
def test_demo_answers_its_default_questions_from_highlighted_sources():
    from ragpress.demo import KEYS, QUESTIONS, python_reference, run_demo

    out = io.StringIO()
    results = run_demo(QUESTIONS, out=out)
    printed = out.getvalue()
    right = [KEYS[r.query].is_answered_by(r.output.text) for r in results]
    assert sum(right) >= 2, [r.output.text for r in results]
    for result in results:
        context = result.output.context
        check_provenance(result.output.sources, python_reference())
        assert context.tokens_after < context.tokens_before / 4  # pruned, not passed whole
        assert f"{context.tokens_before} retrieved, {context.tokens_after} kept, {context.tokens_saved} saved" in printed
        assert all(f"[[{piece.text}" in printed or f"{piece.text}]]" in printed for piece in context.pieces)
    assert printed.count("load models") == 1 and printed.count("\ntotal ") == 3 and "\033[" not in printed


@pytest.mark.integration
def test_compare_prints_the_answers_with_and_without_compression_side_by_side():
    from ragpress.demo import QUESTIONS, run_compare

    out = io.StringIO()
    ((pruned, full),) = run_compare(QUESTIONS[:1], out=out)
    rows = out.getvalue().split(f"Q: {QUESTIONS[0]}\n", 1)[1].splitlines()
    heading = rows[: next(i for i, row in enumerate(rows) if row.startswith("---"))]
    left, right = (" ".join(row.split(" | ")[side].strip() for row in heading) for side in (0, 1))
    assert left.startswith(f"WITH Provence: {pruned.output.context.tokens_after} context tokens")
    assert right.startswith(f"WITHOUT compression (full passages): {full.output.context.tokens_after} context tokens")
    assert full.output.context.tokens_after == full.output.context.tokens_before > 4 * pruned.output.context.tokens_after
    printed = out.getvalue()
    assert pruned.output.text.split()[0] in printed and full.output.text.split()[0] in printed


@pytest.mark.integration
def test_bundled_lm_loads_from_the_converted_copy_and_prefers_real_text():
    from ragpress.models import load_causal_lm, loaded, unload

    load_causal_lm("smollm2-135m", device="cpu")  # converts once if needed
    assert unload("smollm2-135m") >= 1 and not any(name == "smollm2-135m" for _, name, *_ in loaded())
    start = time.perf_counter()
    lm = load_causal_lm("smollm2-135m", device="cpu")
    seconds = time.perf_counter() - start
    assert lm.model.config.num_hidden_layers == 30
    text = "The quick brown fox jumps over the lazy dog. It was a bright cold day in April."
    shuffled = " ".join(sorted(text.split()))
    assert lm.perplexity(text) < lm.perplexity(shuffled)
    assert seconds < 5, f"cached load took {seconds:.1f} s"
    assert math.isfinite(lm.perplexity(text * 8, window=64, stride=32))
