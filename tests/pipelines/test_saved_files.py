"""Pipeline files saved by ragpress before the layout of 2026-11-30 (main at 0909319) load and run:
stage types that moved and settings that were renamed are translated at the file boundary
(ragpress.core.legacy), and a current file passes through unchanged."""

from pathlib import Path

import pytest
import yaml

from ragpress import Document, Pipeline, Stage
from ragpress.core.legacy import upgrade

SAVED = Path(__file__).parent / "saved"


def test_every_stage_saved_by_the_old_layout_loads_with_the_same_meaning():
    old = yaml.safe_load((SAVED / "all_stages_0909319.yaml").read_text())
    assert len(old) == 22
    for data in old:
        stage = Stage.from_dict(data)
        new = stage.to_dict()
        assert Stage.from_dict(new).to_dict() == new and upgrade(new) == new  # current names pass unchanged
    by_type = {d["type"].rsplit(".", 1)[1]: Stage.from_dict(d) for d in old}
    assert by_type["MarginSamplingChunker"].to_dict()["type"] == "ragpress.chunkers.meta_chunking.MarginSamplingChunker"
    assert by_type["RetroLM"].to_dict()["type"] == "ragpress.generators.retrolm.RetroLM"
    assert by_type["DenseRetriever"].top_k == 5 and by_type["GemFilter"].budget == 1024
    assert by_type["LatticeRetriever"].model == "smollm2-135m" and by_type["LatticeRetriever"].embedding_model == "minilm-l6"
    assert by_type["EDUSelectCompressor"].model == "minilm-l6" and by_type["EDUSelectCompressor"].segmenter_model == "smollm2-135m"
    code = by_type["LongCodeZip"]
    assert (code.budget, code.ratio, code.fine_ratio) == (None, 2.0, 2.0)  # kept fractions 0.5 became ratios 2
    assert by_type["CompLLM"].ratio == 2 and by_type["ArcEncoder"].ratio == 4


def test_an_old_longcodezip_fraction_becomes_the_same_ratio():
    data = {"type": "ragpress.compressors.longcodezip.LongCodeZip", "settings": {"rate": 0.25, "fine_ratio": 0.8, "target_tokens": 300}}
    stage = Stage.from_dict(data)
    assert (stage.budget, stage.ratio, stage.fine_ratio) == (300, 4.0, 1.25)


@pytest.mark.integration
def test_the_readme_pipeline_saved_by_the_old_layout_loads_and_runs():
    rag = Pipeline.load(SAVED / "readme_pipeline_0909319.yaml")
    assert [n.stage.to_dict()["type"].rsplit(".", 1)[1] for n in rag.nodes.values()] == [
        "DenseRetriever", "BM25Retriever", "ReciprocalRankFusion", "BudgetPacker", "TransformersGenerator"]
    rag.nodes["answer"].stage.max_new_tokens = 8
    from pydoc_data.topics import topics

    rag.index([Document(topics[name], id=name) for name in ("with", "for", "while", "if")])
    answer = rag.run("What does the with statement call when the block is exited?").output
    assert answer.text and answer.sources and answer.metadata["method"] == "transformers"
    assert {p.doc_id for p in answer.sources} <= {"with", "for", "while", "if"}
