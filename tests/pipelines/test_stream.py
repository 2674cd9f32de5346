import pytest

from ragpress import Pipeline
from ragpress.chunkers.token_window import TokenWindowChunker
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.core import Document
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.retrievers.bm25 import BM25Retriever

DOCS = [Document("The with statement calls __exit__ when the block ends."), Document("A for loop may have an else clause.")]


def test_stream_yields_the_same_answer_as_run(tiny_lm_path):
    rag = Pipeline(chunker=TokenWindowChunker(size=8, overlap=2)).add("bm25", BM25Retriever(top_k=2))
    rag.add("pack", BudgetPacker(budget=40, tokenizer=tiny_lm_path), after="bm25")
    rag.add("answer", TransformersGenerator(model=tiny_lm_path, device="cpu", max_new_tokens=6), after="pack")
    rag.index(DOCS)
    pieces = list(rag.stream("What does the with statement call?"))
    assert len(pieces) >= 2 and "".join(pieces).strip() == rag.run("What does the with statement call?").output.text
    with pytest.raises(ValueError, match="query is empty"):
        rag.stream("  ")
    inputs, tokens = rag.start_stream("What does the with statement call?")
    assert inputs == [rag.run("What does the with statement call?").outputs["pack"]] and "".join(tokens) == "".join(pieces)


def test_only_a_pipeline_ending_in_a_generator_streams(tiny_lm_path):
    rag = Pipeline(chunker=TokenWindowChunker(size=8, overlap=2)).add("bm25", BM25Retriever(top_k=2))
    rag.index(DOCS)
    with pytest.raises(TypeError, match=r"final stage 'bm25' \(BM25Retriever\) gives list\[Chunk\]"):
        rag.stream("with")
