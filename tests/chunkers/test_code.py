import inspect
import itertools
import json.decoder
import re
import textwrap

import pytest
import torch

from ragpress.chunkers.code import CodeChunker, load_parser
from ragpress.chunkers.code.partition import SLACK
from ragpress.core.loaders import load_causal_lm, load_tokenizer
from ragpress.core.types import Document

MUMPS = "".join(
    f"LABEL{i} ; routine {i}\n N X,Y,Z\n S X=$P(^IRT({i},0),U,1)\n I X=\"\" Q\n"
    f" F Y=1:1:10 S Z=$G(^IRT({i},Y)) W !,Z\n D LABEL{i + 1}\n Q\n\n"
    for i in range(12)
)


def fake_llm(chunker, replies):
    """Make ``chunker`` answer partition prompts with ``replies`` in turn (the last one repeats)."""
    prompts = []

    def ask(batch):
        prompts.extend(batch)
        return [replies[min(len(prompts) - len(batch) + i, len(replies) - 1)] for i in range(len(batch))]

    chunker.ask_llm = ask
    return prompts


def check_chunks(doc, chunks, max_tokens):
    """Chunks are ordered, disjoint, whole lines with the right line numbers, and within the limit
    unless a single line is longer (coverage itself is checked by Chunker.run)."""
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))
    for chunk in chunks:
        meta = chunk.metadata
        assert doc.text.count("\n", 0, chunk.start) + 1 == meta["start_line"]
        assert meta["start_line"] + chunk.text.rstrip("\n").count("\n") == meta["end_line"]
        assert chunk.start == 0 or doc.text[chunk.start - 1] == "\n"
        assert chunk.token_count <= max_tokens or (meta["over_budget"] and meta["start_line"] == meta["end_line"])


@pytest.mark.parametrize("module", [textwrap, json.decoder, inspect])
def test_stdlib_modules_are_covered_by_units(module, tiny_lm_path):
    doc = Document(inspect.getsource(module), metadata={"path": module.__file__})
    chunker = CodeChunker(max_tokens=512, model=tiny_lm_path, pack=False)  # one unit per chunk (packing: below)
    fake_llm(chunker, ["no idea"])
    chunks = chunker.run([doc])
    check_chunks(doc, chunks, 512)
    kinds = {c.metadata["kind"] for c in chunks}
    assert {"function", "statements"} <= kinds and all(c.metadata["language"] == "python" for c in chunks)
    names = {c.metadata["name"] for c in chunks}
    assert {n for n in dir(module) if inspect.isfunction(getattr(module, n)) and getattr(module, n).__module__ == module.__name__
            and len(inspect.getsource(getattr(module, n))) < 800} <= names  # small functions are whole units


def test_classes_over_budget_split_into_methods(tiny_lm_path):
    doc = Document(inspect.getsource(textwrap), metadata={"language": "python"})
    whole = CodeChunker(max_tokens=4096, model=tiny_lm_path, pack=False).run([doc])
    assert [c.metadata["name"] for c in whole if c.metadata["kind"] == "class"] == ["TextWrapper"]
    split = CodeChunker(max_tokens=300, model=tiny_lm_path, pack=False)
    fake_llm(split, [""])
    chunks = split.run([doc])
    methods = {c.metadata["name"] for c in chunks if c.metadata["kind"] == "method"}
    assert {"_munge_whitespace", "wrap", "fill"} <= methods
    assert all(c.metadata["parent"] == "TextWrapper" for c in chunks if c.metadata["kind"] == "method")


def test_budget_smaller_than_one_unit_partitions_it(tiny_lm_path):
    source = inspect.getsource(textwrap.dedent)
    doc = Document(source, metadata={"language": "python"})
    chunker = CodeChunker(max_tokens=40, model=tiny_lm_path)
    prompts = fake_llm(chunker, ["nothing useful"])
    chunks = chunker.run([doc])
    check_chunks(doc, chunks, 40)
    assert len(chunks) > 3 and {c.metadata["name"] for c in chunks} == {"dedent"}
    assert [c.metadata["part"] for c in chunks] == list(range(len(chunks)))
    assert prompts and "dedent" in prompts[0] and "    1 | def dedent" in prompts[0]
    assert {c.metadata["split"] for c in chunks} <= {"statement", "fixed", "unit"}


def test_unknown_language_is_partitioned_by_the_llm(tiny_lm_path):
    assert load_parser("mumps") is None
    doc = Document(MUMPS, metadata={"language": "MUMPS"})
    chunks = CodeChunker(max_tokens=120, model=tiny_lm_path).run([doc])  # a random model: fallbacks only
    check_chunks(doc, chunks, 120)
    assert len(chunks) > 1 and all(c.metadata["language"] == "mumps" and c.metadata["kind"] == "file" for c in chunks)
    assert all(c.text.startswith("LABEL") for c in chunks if c.metadata["split"] != "fixed")  # labels are the structure


@pytest.mark.parametrize(
    "reply", ["", "I cannot do that", "9, 9, 1, 0, 99999, -4", "17 9 25", "line 9", "9, 17, 25, 33, 41"]
)
def test_malformed_partition_answers_are_repaired_or_fall_back(reply, tiny_lm_path):
    doc = Document(MUMPS, metadata={"path": "IRTUTIL.m"})
    chunker = CodeChunker(max_tokens=120, model=tiny_lm_path)
    fake_llm(chunker, [reply])
    chunks = chunker.run([doc])
    check_chunks(doc, chunks, 120)
    starts = [c.metadata["start_line"] for c in chunks]
    for line in (9, 17):  # valid partition points the model gave are honoured
        if str(line) in reply and not reply.startswith("line"):
            assert line in starts
    assert any(c.metadata["split"] == "llm" for c in chunks) == any(ch.isdigit() for ch in reply)


def test_grammar_mapping_and_bad_settings(tiny_lm_path):
    doc = Document("import os\n\n\ndef f():\n    return os.sep\n", metadata={"language": "py3"})
    chunks = CodeChunker(grammars={"py3": "tree_sitter_python"}, model=tiny_lm_path, pack=False).run([doc])
    assert [(c.metadata["kind"], c.metadata["name"]) for c in chunks] == [("statements", ""), ("function", "f")]
    packed = CodeChunker(grammars={"py3": "tree_sitter_python"}, model=tiny_lm_path).run([doc])
    assert [(c.metadata["kind"], c.metadata["names"], c.text) for c in packed] == [("units", ["f"], doc.text.rstrip("\n") + "\n")]
    with pytest.raises(ValueError, match="set CodeChunker\\(language=...\\)"):
        CodeChunker().run([Document("x = 1\n")])
    with pytest.raises(ValueError, match="has no function 'nope'"):
        CodeChunker(grammars={"py4": "tree_sitter_python:nope"}).run([Document("x = 1\n", metadata={"language": "py4"})])
    with pytest.raises(ValueError, match="at least 8"):
        CodeChunker(max_tokens=2)


@pytest.mark.parametrize("module", [textwrap, inspect])
def test_units_are_packed_up_to_the_limit_with_exact_counts(module, tiny_lm_path):
    doc = Document(inspect.getsource(module), metadata={"language": "python"})
    chunker, unpacked = CodeChunker(max_tokens=256, model=tiny_lm_path), CodeChunker(max_tokens=256, model=tiny_lm_path, pack=False)
    fake_llm(chunker, [""]), fake_llm(unpacked, [""])
    chunks, units = chunker.run([doc]), unpacked.run([doc])
    check_chunks(doc, chunks, 256)
    tokenizer = load_tokenizer(chunker.tokenizer)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    assert all(c.token_count == count(c.text) for c in chunks)  # exact, though decided from one pass over the file
    assert len(chunks) < len(units) and sum(c.token_count < 25 for c in chunks) < sum(c.token_count < 25 for c in units)
    for a, b in itertools.pairwise(chunks):  # neighbours that could be joined do not fit together
        if a.metadata["split"] == "unit" and b.metadata["part"] == 0:
            assert count(doc.text[a.start : b.end]) > 256 - SLACK - 2
    assert {c.metadata["name"] for c in units if c.metadata["name"]} <= {n for c in chunks for n in c.metadata["names"]}


def batch_files():
    """Files that need different numbers of partition prompts: two stdlib modules and, without a grammar, MUMPS."""
    return [Document(inspect.getsource(module), metadata={"path": module.__file__}) for module in (textwrap, json.decoder)] + [
        Document(MUMPS, metadata={"language": "mumps"})]


def reply_to(prompt):
    """A fake LLM's reply that depends on the prompt: every second line in it that starts a statement."""
    starts = re.findall(r"^ *(\d+) \| *(?:def|for|if|while|return|LABEL)", prompt, re.M)
    return ", ".join(starts[1::2])


def recorded(ask, calls):
    """``ask`` (a batch-shaped LLM hook) that appends each call's ``{prompt: reply}`` to ``calls``."""
    def hook(prompts):
        replies = ask(prompts)
        calls.append(dict(zip(prompts, replies, strict=True)))
        return replies
    return hook


def check_batch_equals_alone(chunker, docs, calls):
    """chunk_batch over ``docs`` gives each file's chunks alone and the same replies, with one LLM call per round."""
    alone, rounds, replies = [], [], {}
    for doc in docs:
        calls.clear()
        alone.append(chunker.run([doc]))
        assert {len(c) for c in calls} <= {1}  # alone: one prompt per call
        rounds.append(len(calls))
        replies |= {p: r for call in calls for p, r in call.items()}
    calls.clear()
    assert chunker.run_batch([docs[:2], docs[2:]]) == [alone[0] + alone[1], [c for chunks in alone[2:] for c in chunks]]
    assert len(calls) == max(rounds) < sum(rounds) and sum(map(len, calls)) == sum(rounds)
    assert {p: r for call in calls for p, r in call.items()} == replies
    return alone, replies


def test_chunk_batch_equals_each_file_alone_with_one_llm_call_per_round(tiny_lm_path):
    chunker = CodeChunker(max_tokens=48, model=tiny_lm_path)
    calls = []
    chunker.ask_llm = recorded(lambda prompts: [reply_to(p) for p in prompts], calls)
    alone, _ = check_batch_equals_alone(chunker, batch_files(), calls)
    assert all(any(c.metadata["split"] == "llm" for c in chunks) for chunks in alone)  # the replies decided cuts


def test_chunk_batch_with_a_real_greedy_model_equals_each_file_alone(tiny_lm_path, monkeypatch):
    lm = load_causal_lm(tiny_lm_path)  # the random model answers only newlines: a bias on digits makes it answer numbers
    head = torch.nn.Linear(lm.model.lm_head.in_features, lm.model.lm_head.out_features)
    with torch.no_grad():
        head.weight.copy_(lm.model.lm_head.weight), head.bias.zero_()
        head.bias[lm.tokenizer.convert_tokens_to_ids(list("0123456789,"))] = 8.0
    docs = [Document(inspect.getsource(f), metadata={"language": "python"}) for f in (textwrap.dedent, textwrap.indent)]
    docs.append(Document(MUMPS[:400], metadata={"language": "mumps"}))  # 3, 1 and 2 rounds: few generations
    calls, ask = [], CodeChunker.ask_llm
    monkeypatch.setattr(CodeChunker, "ask_llm", lambda self, prompts: recorded(lambda p: ask(self, p), calls)(prompts))
    # the cached model's head is swapped by hand, not by monkeypatch: pytest >= 9.2 undoes a setattr of an attribute
    # that is not in the instance's __dict__ (a submodule lives in _modules) by deleting it, which left later tests
    # sharing this cached model without an lm_head
    original, lm.model.lm_head = lm.model.lm_head, head
    try:
        _, replies = check_batch_equals_alone(CodeChunker(max_tokens=60, model=tiny_lm_path), docs, calls)
    finally:
        lm.model.lm_head = original
    assert len(set(replies.values())) > 1 and all(r[:1].isdigit() for r in replies.values())  # replies depend on the prompt


@pytest.mark.integration
def test_smollm2_partitions_a_long_stdlib_function():
    doc = Document(inspect.getsource(json.decoder.py_scanstring), metadata={"language": "python"})
    chunks = CodeChunker(max_tokens=150).run([doc])
    check_chunks(doc, chunks, 150)
    assert len(chunks) >= 3 and {c.metadata["name"] for c in chunks} == {"py_scanstring"}
