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


@pytest.mark.integration
def test_demo_answers_from_real_python_reference_text_with_exact_sources():
    from ragpress.demo import python_reference, run_demo

    out = io.StringIO()
    (result,) = run_demo(("What does the global statement do?",), max_new_tokens=24, out=out)
    answer = result.output
    assert answer.text.strip()
    assert any('"global" statement' in piece.text for piece in answer.sources)
    check_provenance(answer.sources, python_reference())
    printed = out.getvalue()
    assert "offsets checked" in printed and f"{answer.context.tokens_saved} saved" in printed


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
