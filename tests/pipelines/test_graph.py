import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragpress import Pipeline
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.chunkers.token_window import TokenWindowChunker
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.core import Answer, Context, Document, Stage, check_provenance
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.retrievers.dense import DenseRetriever
from ragpress.retrievers.fusion import ReciprocalRankFusion

DOCS = [
    Document("The with statement wraps a block. It calls __exit__ when the block ends.\n\nContext managers define __enter__.", id="with"),
    Document("A for loop runs its else clause when the loop was not ended by break.", id="for"),
    Document("The global statement makes listed names refer to module globals.", id="global"),
]


@pytest.fixture()
def rag(tiny_lm_path, tiny_embedder_path):
    pipeline = Pipeline(chunker=SentenceChunker(unit="sentence", max_tokens=16))
    pipeline.add("dense", DenseRetriever(model=tiny_embedder_path, top_k=3)).add("bm25", BM25Retriever(top_k=3))
    pipeline.add("fuse", ReciprocalRankFusion(top_k=3), after=["dense", "bm25"])
    pipeline.add("pack", BudgetPacker(budget=40, tokenizer=tiny_lm_path), after="fuse")
    pipeline.add("answer", TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=4), after="pack")
    return pipeline


def test_end_to_end_run_traces_every_stage_and_keeps_provenance(rag):
    chunks = rag.index(DOCS)
    assert len(chunks) >= 4
    result = rag.run("What does the with statement call?")
    answer = result.output
    assert isinstance(answer, Answer) and answer.completion_tokens == 4
    check_provenance(answer.sources, DOCS)
    assert [t.name for t in result.trace] == ["dense", "bm25", "fuse", "pack", "answer"]
    pack = result.trace[3]
    assert pack.tokens_out == answer.context.tokens_after <= 40 and pack.tokens_in == answer.context.tokens_before
    assert result.trace[2].items_in == len(result.outputs["dense"]) + len(result.outputs["bm25"])
    assert all(t.seconds >= 0 for t in result.trace) and "pack" in result.table()


def test_batch_gives_the_same_outputs_as_single_runs(rag):
    rag.index(DOCS)
    queries = ["for loop else clause", "global names"]
    batch = rag.run_batch(queries)
    assert [r.output for r in batch] == [rag.run(q).output for q in queries]


def test_wiring_errors_name_both_stages(tiny_lm_path):
    pipeline = Pipeline().add("bm25", BM25Retriever())
    with pytest.raises(TypeError, match=r"'answer' \(TransformersGenerator\) takes Context but 'bm25' \(BM25Retriever\) gives list\[Chunk\].*compressor"):
        pipeline.add("answer", TransformersGenerator(model=tiny_lm_path), after="bm25")
    with pytest.raises(ValueError, match="does not have"):
        pipeline.add("pack", BudgetPacker(), after="dense")
    with pytest.raises(ValueError, match="already in the pipeline"):
        pipeline.add("bm25", BM25Retriever())
    with pytest.raises(TypeError, match="takes list\\[Chunk\\] but is wired after 0"):
        pipeline.add("pack", BudgetPacker())
    with pytest.raises(TypeError, match="merges the outputs"):
        pipeline.add("fuse", ReciprocalRankFusion())
    with pytest.raises(TypeError, match="must be a ragpress Stage"):
        pipeline.add("x", object())


def test_a_pipeline_needs_one_final_stage_and_a_chunker_to_index():
    pipeline = Pipeline().add("a", BM25Retriever()).add("b", BM25Retriever())
    with pytest.raises(ValueError, match=r"exactly one final stage, found \['a', 'b'\]"):
        pipeline.run("q")
    with pytest.raises(ValueError, match="no chunker"):
        pipeline.index(DOCS)
    with pytest.raises(ValueError, match="corpus is empty"):
        Pipeline(chunker=SentenceChunker()).add("a", BM25Retriever()).index([])


def test_round_trip_through_dict_and_yaml(rag, tmp_path):
    data = rag.to_dict()
    assert Pipeline.from_dict(data).to_dict() == data
    rag.save(tmp_path / "rag.yaml")
    assert Pipeline.load(tmp_path / "rag.yaml").to_dict() == data
    assert "BudgetPacker" in (tmp_path / "rag.yaml").read_text()


def test_loading_refuses_stage_types_from_outside_ragpress():
    data = {"chunker": None, "stages": [{"name": "x", "after": [], "type": "os.system", "settings": {}}]}
    with pytest.raises(ValueError, match="outside ragpress"):
        Pipeline.from_dict(data)
    with pytest.raises(ValueError, match="not a ragpress Stage"):
        Stage.from_dict({"type": "ragpress.core.types.Document", "settings": {"text": "x"}})


def test_a_pipeline_may_end_in_a_compressor(tiny_lm_path):
    pipeline = Pipeline(chunker=TokenWindowChunker(size=8, overlap=2))
    pipeline.add("bm25", BM25Retriever(top_k=2)).add("pack", BudgetPacker(budget=30, tokenizer=tiny_lm_path), after="bm25")
    pipeline.index(DOCS)
    assert isinstance(pipeline.run("loop else").output, Context)
    assert list(pipeline.to_networkx().edges) == [("query", "bm25"), ("bm25", "pack")]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=4), st.text(min_size=1, max_size=30).filter(str.strip))
def test_provenance_survives_the_pipeline_on_random_text(tiny_lm_path, texts, query):
    docs = [Document(t) for t in dict.fromkeys(texts)]
    pipeline = Pipeline(chunker=TokenWindowChunker(size=12, overlap=3))
    bm25 = BM25Retriever(top_k=4)
    pipeline.add("bm25", bm25).add("pack", BudgetPacker(budget=10_000, tokenizer=tiny_lm_path), after="bm25")
    try:
        pipeline.index(docs)
    except ValueError as error:  # only when there is truly nothing to index (blank text, or stopwords alone)
        assert "no words to index" in str(error) or "corpus is empty" in str(error)
        assert not bm25._tokenize(texts).vocab
        return
    check_provenance(pipeline.run(query).output.pieces, docs)


def test_index_cache_is_reused_and_keyed_by_documents_and_settings(rag, tmp_path):
    chunks = rag.index(DOCS, cache=tmp_path)
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert [f.split("-")[0] for f in folders] == ["BM25Retriever", "DenseRetriever"]
    first = rag.run("global names").output
    rag.chunker.max_tokens = 15  # would chunk differently: must not be served from the cache
    rag.index(DOCS, cache=tmp_path)
    assert len(list(tmp_path.iterdir())) == 4
    rag.chunker.max_tokens = 16
    assert rag.index(DOCS, cache=tmp_path) == chunks
    assert rag.run("global names").output == first


def test_table_lists_setup_on_its_own_lines_and_ends_with_the_run_total(rag):
    rag.index(DOCS)
    result = rag.run("What does the with statement call?")
    lines = result.table(setup=[("load models", 2.5)]).splitlines()
    assert lines[1].split()[:2] == ["load", "models"] and "2500" in lines[1]
    assert [line.split()[0] for line in lines[2:-1]] == ["dense", "bm25", "fuse", "pack", "answer"]
    assert lines[-1].split() == ["total", f"{result.seconds * 1000:.0f}"]
    assert "load" not in result.table()


def test_index_cache_key_reads_a_lone_surrogate(tmp_path):
    docs = [Document("Text with a lone surrogate \ud800 inside it, and more words after it.", id="odd")]
    pipeline = Pipeline(chunker=TokenWindowChunker(size=12, overlap=3)).add("bm25", BM25Retriever(top_k=2))
    chunks = pipeline.index(docs, cache=tmp_path)
    assert pipeline.index(docs, cache=tmp_path) == chunks and len(list(tmp_path.iterdir())) == 1
