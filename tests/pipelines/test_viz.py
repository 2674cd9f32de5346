import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from ragpress import Pipeline, Result  # noqa: E402
from ragpress.compressors.budget_packer import BudgetPacker  # noqa: E402
from ragpress.pipelines.trace import StageTrace  # noqa: E402
from ragpress.pipelines.viz import plot_pipeline, plot_trace  # noqa: E402
from ragpress.retrievers.bm25 import BM25Retriever  # noqa: E402
from ragpress.retrievers.fusion import ReciprocalRankFusion  # noqa: E402


def test_draw_pipeline_places_every_stage_after_its_inputs():
    rag = Pipeline().add("a", BM25Retriever()).add("b", BM25Retriever())
    rag.add("fuse", ReciprocalRankFusion(), after=["a", "b"]).add("pack", BudgetPacker(), after="fuse")
    fig = plot_pipeline(rag)
    ax = fig.axes[0]
    labels = {t.get_text().split("\n")[0]: t.get_position()[0] for t in ax.texts}
    assert labels["query"] < labels["a"] == labels["b"] < labels["fuse"] < labels["pack"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"input", "retriever", "fusion", "compressor"}
    with pytest.raises(TypeError, match="takes a Pipeline"):
        plot_pipeline("rag")


def test_plot_trace_draws_one_bar_per_stage_with_the_mean_time():
    def result(seconds):
        trace = (StageTrace("bm25", "BM25Retriever", seconds, 1, 5, None, 300), StageTrace("pack", "BudgetPacker", 2 * seconds, 5, 2, 300, 120))
        return Result("q", None, {}, trace)

    fig = plot_trace([result(0.01), result(0.03)])
    bars = fig.axes[0].patches
    assert [round(b.get_width(), 6) for b in bars] == [20.0, 40.0]
    assert any("5→2 items, 300→120 tokens" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(TypeError, match="takes a Result"):
        plot_trace([])
