from __future__ import annotations

import itertools
import math
import random
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragpress.compressors.longcodezip import LongCodeZip
from ragpress.compressors.longcodezip.steps import knapsack, spike_blocks, split_functions
from ragpress.compressors.longcodezip.viz import highlight_html
from ragpress.core.errors import BudgetTooSmallError
from ragpress.core.types import Chunk, Document, check_provenance

CODE = '''import math

def area(radius):
    """Area of a circle."""
    return math.pi * radius ** 2


def perimeter(radius):
    # the circumference
    total = 2 * math.pi * radius
    if total < 0:
        raise ValueError("negative")
    scaled = total * 1.0
    return scaled


class Stack:
    """A tiny stack."""

    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)
        if len(self.items) > 100:
            self.items.pop(0)
        count = len(self.items)
        return count

    def pop(self):
        return self.items.pop()
'''


def brute_force(weights, values, capacity):
    best = 0.0
    for r in range(len(weights) + 1):
        for subset in itertools.combinations(range(len(weights)), r):
            if sum(weights[i] for i in subset) <= capacity:
                best = max(best, sum(values[i] for i in subset))
    return best


def test_knapsack_hand_case_beats_greedy_and_matches_brute_force():
    # Greedy by value/weight takes item 0 (ratio 2) and then nothing fits; the optimum is {1, 2}.
    weights, values = [6, 5, 5], [12.0, 9.0, 9.0]
    chosen = knapsack(weights, values, 10)
    assert chosen == {1, 2}
    assert sum(values[i] for i in chosen) == brute_force(weights, values, 10)


def test_knapsack_random_cases_are_optimal_and_feasible():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(0, 8)
        weights = [rng.randint(0, 12) for _ in range(n)]
        values = [rng.uniform(-3, 10) for _ in range(n)]
        capacity = rng.randint(0, 30)
        chosen = knapsack(weights, values, capacity)
        assert sum(weights[i] for i in chosen) <= capacity
        assert math.isclose(sum(values[i] for i in chosen), brute_force(weights, values, capacity), abs_tol=1e-9)


def test_spike_blocks_cut_after_lines_that_rise_above_the_threshold():
    bits = [1.0, 1.0, 9.0, 1.0, None, 1.0, 1.2, 1.0]
    blocks = spike_blocks(bits, k=0.2)
    assert blocks == [(0, 3), (3, 8)]
    assert spike_blocks([2.0, 2.0, 2.0], k=0.2) == [(0, 3)]


def test_split_functions_tiles_the_code_and_falls_back_on_syntax_errors():
    functions, note = split_functions(CODE)
    assert note == "tree-sitter-python"
    assert [f.name for f in functions] == ["<module>", "area", "perimeter", "Stack", "Stack.__init__", "Stack.push", "Stack.pop"]
    assert functions[0].first == 0 and functions[-1].last == len(CODE.split("\n"))
    assert all(a.last == b.first for a, b in zip(functions, functions[1:]))
    broken, note = split_functions(CODE.replace("def area(radius):", "def area(radius:"))
    assert "syntax error" in note and "area" in [f.name for f in broken]
    js, note = split_functions("function a(x) {\n  return x;\n}\nfunction b() {\n  return 1;\n}\n", "javascript")
    assert [f.name for f in js] == ["a", "b"] and note in ("tree-sitter-javascript", "definition-line regex (c_family rule; no tree-sitter grammar for 'javascript')")
    mumps, note = split_functions("START ; entry\n  WRITE 1\n  QUIT\n", "mumps")
    assert [f.name for f in mumps] == ["<module>"] and "no tree-sitter grammar for 'mumps'" in note


JAVA = """package demo;

// A stack of ints.
public class Stack {
    private int[] items = new int[8];

    /** Push one item. */
    public void push(int x) {
        items[0] = x;
    }
}

interface Shape {
    double area();
}
"""


def test_split_functions_parses_other_languages_with_their_grammar():
    pytest.importorskip("tree_sitter_language_pack")
    functions, note = split_functions(JAVA, "Java")
    assert note == "tree-sitter-java"
    assert [(f.name, f.first) for f in functions] == [("<module>", 0), ("Stack", 2), ("Stack.push", 6), ("Shape", 12), ("Shape.area", 13)]
    assert functions[-1].last == len(JAVA.split("\n")) and all(a.last == b.first for a, b in zip(functions, functions[1:]))
    go, note = split_functions("package main\n\n// add adds.\nfunc add(a, b int) int {\n\treturn a + b\n}\n\nfunc (p P) X() int {\n\treturn p.x\n}\n", "go")
    assert note == "tree-sitter-go" and [(f.name, f.first) for f in go] == [("<module>", 0), ("add", 2), ("X", 7)]
    broken, note = split_functions(JAVA.replace("push(int x)", "push(int x"), "java")
    assert "syntax error" in note and len(broken) > 1


@pytest.fixture()
def compressor(tiny_lm_path):
    return LongCodeZip(model=tiny_lm_path, budget=80, fine_ratio=2.0, device="cpu")


def test_pieces_are_exact_spans_and_within_budget(compressor):
    document = Document(CODE)
    chunk = Chunk.of(document, 0, len(CODE))
    context = compressor.run("Complete the push method of Stack.", [chunk])
    assert context.pieces and context.tokens_after <= 80
    assert context.tokens_after == compressor.count_tokens(context.text)
    assert context.tokens_before == compressor.count_tokens(CODE)
    check_provenance(context.pieces, [document])
    assert context.metadata["splitter"] == ["tree-sitter-python"]
    html = highlight_html(context, CODE)
    assert "line-through" in html and "#d9f2d9" in html


def test_offsets_are_document_offsets_for_chunks_inside_a_document(tiny_lm_path):
    prefix = "# header comment that is not passed on\n"
    document = Document(prefix + CODE)
    chunk = Chunk.of(document, len(prefix), len(document.text))
    context = LongCodeZip(model=tiny_lm_path, budget=60, device="cpu").run("Compute the area.", [chunk])
    check_provenance(context.pieces, [document])
    assert all(p.start >= len(prefix) for p in context.pieces)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(budget=st.integers(min_value=1, max_value=400), fine_ratio=st.sampled_from([2.0, 1.25, 1.0]))
def test_budget_is_never_exceeded(tiny_lm_path, budget, fine_ratio):
    compressor = LongCodeZip(model=tiny_lm_path, budget=budget, fine_ratio=fine_ratio, min_lines=3, device="cpu")
    try:
        context = compressor.compress_code(CODE, "Complete the push method of Stack.")
    except ValueError as error:
        assert "too small" in str(error)
        return
    assert context.tokens_after <= budget
    assert context.tokens_after == compressor.count_tokens(context.text)


def test_functions_with_too_few_blocks_are_kept_or_dropped_whole(tiny_lm_path):
    """With a spike threshold no line reaches, every function is one block, fewer than min_lines:
    the official code keeps such functions whole instead of choosing blocks from them."""
    compressor = LongCodeZip(model=tiny_lm_path, budget=90, fine_ratio=2.0, min_lines=3, spike_k=1e6, device="cpu")
    context = compressor.compress_code(CODE, "Complete the push method of Stack.")
    assert 0 < context.tokens_after <= 90
    lines = CODE.split("\n")
    kept = {i for p in context.pieces for i in range(*p.metadata["lines"])}
    for f in context.metadata["functions"]:
        body = {i for i in range(*f["lines"]) if lines[i].strip()}
        assert body <= kept or not body & kept, f["name"]
    assert any(len([i for i in range(*f["lines"]) if lines[i].strip()]) >= 3 and set(range(*f["lines"])) & kept
               for f in context.metadata["functions"])  # a function long enough for the fine stage was kept


def test_ranking_is_the_approximated_mutual_information_with_the_instruction(tiny_lm_path, tiny_lm):
    instruction = "Complete the push method of Stack."
    context = LongCodeZip(model=tiny_lm_path, budget=60, device="cpu").compress_code(CODE, instruction)
    lines = CODE.split("\n")
    base = math.exp(-tiny_lm.continuation_logprobs([""], [instruction])[0].mean().item())
    for f in context.metadata["functions"][1:3]:
        text = "\n".join(lines[f["lines"][0] : f["lines"][1]])
        conditional = math.exp(-tiny_lm.continuation_logprobs([text + "\n\n"], [instruction])[0].mean().item())
        assert f["ami"] == pytest.approx(base - conditional, rel=1e-3, abs=1e-3)
    other = LongCodeZip(model=tiny_lm_path, budget=60, device="cpu").compress_code(CODE, "Return the area of a circle.")
    assert [f["ami"] for f in other.metadata["functions"]] != [f["ami"] for f in context.metadata["functions"]]
    ranks = sorted(context.metadata["functions"], key=lambda f: f["rank"])
    assert all(a["ami"] >= b["ami"] for a, b in zip(ranks, ranks[1:]))


def test_bad_input(tiny_lm_path):
    compressor = LongCodeZip(model=tiny_lm_path, budget=10_000, device="cpu")
    unchanged = compressor.compress_code(CODE, "Complete push.")
    assert unchanged.ratio == 1.0 and unchanged.text == CODE and unchanged.metadata["unchanged"]
    empty = compressor.run("Complete push.", [])
    assert empty.pieces == () and empty.tokens_before == 0
    assert compressor.compress_code("", "Complete push.").tokens_after == 0
    for bad in ({"budget": 0}, {"budget": -5}, {"ratio": 0.0}, {"ratio": 0.5}, {"fine_ratio": 0}):
        with pytest.raises(ValueError, match="must be"):
            LongCodeZip(model=tiny_lm_path, **bad)
    with pytest.raises(BudgetTooSmallError, match="too small"):
        LongCodeZip(model=tiny_lm_path, budget=1, device="cpu").compress_code(CODE, "Complete push.")
    with pytest.raises(ValueError, match="empty"):
        compressor.compress_code(CODE, "  ")
    broken = LongCodeZip(model=tiny_lm_path, budget=60, device="cpu").compress_code(CODE.replace("(radius):", "(radius:"), "Area.")
    assert broken.metadata["parse_fallback"] == [0] and "syntax error" in broken.metadata["splitter"][0]


@pytest.mark.integration
def test_smollm2_on_stdlib_module_keeps_the_relevant_function():
    source = (Path(sysconfig.get_paths()["stdlib"]) / "bisect.py").read_text()
    compressor = LongCodeZip(budget=200)
    context = compressor.compress_code(source, "Complete the function insort_left(a, x, lo=0, hi=None, *, key=None) that inserts x into the sorted list a.")
    check_provenance(context.pieces, [Document(source)])
    assert context.tokens_after <= 200 and context.ratio > 3
    top = min(context.metadata["functions"], key=lambda f: f["rank"])
    assert top["name"] in {"insort_left", "bisect_left"}
    assert any(top["name"] in p.metadata["functions"] for p in context.pieces)


@pytest.mark.integration
def test_a_structural_block_larger_than_its_share_does_not_empty_the_result():
    """Regression: colorsys at 300 tokens used to keep nothing, because the block holding
    yiq_to_rgb's signature and most of its body was forced and then dropped whole."""
    import colorsys
    import inspect

    code = inspect.getsource(colorsys)
    context = LongCodeZip(model="smollm2-135m", budget=300).compress_code(code, "Convert a colour from HLS to RGB.")
    assert 0 < context.tokens_after <= 300
    assert all(code[p.start : p.end] == p.text for p in context.pieces)


def test_run_batch_scores_all_files_together_and_equals_run(tiny_lm_path, tiny_lm, monkeypatch):
    """Several files with their own instructions: the same pieces, AMI and selections as one at a
    time, from fewer forward passes (each scoring step batches every file's functions or blocks)."""
    files = [CODE, CODE.replace("radius", "r").replace("Stack", "Queue"), CODE[: CODE.index("class Stack")] + "\n\ndef z(q):\n    return q\n"]
    queries = ["Complete push.", "Return the perimeter of a circle.", "Compute the area."]
    chunk_lists = [[Chunk.of(Document(code, id=f"f{i}"), 0, len(code))] for i, code in enumerate(files)]
    compressor = LongCodeZip(model=tiny_lm_path, budget=70, fine_ratio=2.0, min_lines=2, spike_k=0.0, device="cpu", batch_size=64)
    forwards = []
    real = tiny_lm.model.forward
    monkeypatch.setattr(tiny_lm.model, "forward", lambda *a, **k: forwards.append(1) or real(*a, **k))
    alone = [compressor.run(q, c) for q, c in zip(queries, chunk_lists)]
    one_at_a_time, forwards[:] = len(forwards), []
    together = compressor.run_batch(queries, chunk_lists)
    assert len(forwards) < one_at_a_time
    assert any(len(c.pieces) > 1 for c in alone)
    for a, b in zip(alone, together):
        assert [(p.doc_id, p.start, p.end) for p in a.pieces] == [(p.doc_id, p.start, p.end) for p in b.pieces]
        assert [f["selected"] for f in a.metadata["functions"]] == [f["selected"] for f in b.metadata["functions"]]
        assert [f["ami"] for f in a.metadata["functions"]] == pytest.approx([f["ami"] for f in b.metadata["functions"]], abs=1e-4)
        assert b.metadata["method"] == "longcodezip" and a.tokens_after == b.tokens_after
