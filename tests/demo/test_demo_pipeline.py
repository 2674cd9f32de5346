import pytest

from ragpress import Pipeline
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.core import Document
from ragpress.demo import (
    KEYED,
    KEYS,
    MORE_QUESTIONS,
    QUESTIONS,
    compressor,
    demo_pipeline,
    load_models,
    python_reference,
    uncompressed,
)
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.models import loaded, unload
from ragpress.retrievers.bm25 import BM25Retriever

DOCS = [
    Document("The with statement wraps a block. It calls __exit__ when the block ends. Nothing else happens here.", id="with"),
    Document("A for loop runs its else clause when the loop was not ended by break. Loops repeat a suite.", id="for"),
]


@pytest.fixture()
def rag(tiny_lm_path):
    pipeline = Pipeline(chunker=SentenceChunker(unit="sentence", max_tokens=16))
    pipeline.add("bm25", BM25Retriever(top_k=3))
    pipeline.add("compress", BudgetPacker(budget=12, tokenizer=tiny_lm_path), after="bm25")
    pipeline.add("answer", TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=2), after="compress")
    pipeline.index(DOCS)
    return pipeline


def test_uncompressed_passes_every_retrieved_chunk_whole_through_the_same_stages(rag):
    full = uncompressed(rag)
    query = "the with statement block and the loop else clause"
    packed, whole = rag.run(query), full.run(query)
    assert whole.outputs["bm25"] == packed.outputs["bm25"] and len(whole.outputs["bm25"]) == 3
    assert list(whole.output.context.pieces) == whole.outputs["bm25"]
    assert len(packed.output.context.pieces) < 3
    assert full.nodes["answer"].stage is rag.nodes["answer"].stage and full.nodes["bm25"].stage is rag.nodes["bm25"].stage


def test_load_models_loads_the_generator_before_any_question_is_timed(rag, tiny_lm_path):
    unload(tiny_lm_path)
    seconds = load_models(rag)
    assert seconds > 0 and any(name == tiny_lm_path for _, name, *_ in loaded())


def test_compressor_names_and_a_clear_error():
    assert type(compressor("provence")).__name__ == "Provence" and compressor("budget", 100).budget == 100
    with pytest.raises(ValueError, match="provence, budget"):
        compressor("zip")


def test_questions_are_keyed_and_answered_in_the_reference():
    topics = {d.id: d.text for d in python_reference()}
    assert len(QUESTIONS) == 3 and set(QUESTIONS) < set(MORE_QUESTIONS) and len(MORE_QUESTIONS) == len(KEYED) >= 12
    for question in KEYED:
        assert any(term.lower() in topics[question.topic].lower() for term in question.right), question.text


def test_an_answer_is_right_with_a_right_term_and_no_wrong_one():
    question = KEYS["What exception does a failing assert statement raise?"]
    assert question.is_answered_by("It raises an assertionerror.")
    assert not question.is_answered_by("It raises an AttributeError.")
    assert not question.is_answered_by("AssertionError or AttributeError, whichever comes first.")


def test_demo_dtype_reaches_every_model_and_load_models_loads_the_generator_in_it(rag, tiny_lm_path):
    stages = demo_pipeline(dtype="float32").nodes
    assert [stages[n].stage.dtype for n in ("dense", "compress", "answer")] == ["float32"] * 3
    assert demo_pipeline().nodes["answer"].stage.dtype is None
    rag.nodes["answer"].stage.dtype = "float64"
    unload(tiny_lm_path)  # so that only load_models can have loaded it in float64
    load_models(rag)
    assert ("causal_lm", tiny_lm_path, "cpu", "torch.float64") in loaded()
