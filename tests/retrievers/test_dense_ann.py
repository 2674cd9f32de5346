"""DenseRetriever's index kinds (flat, IVF, HNSW, auto) on injected vectors: no embedder needed."""

import faiss
import numpy as np
import pytest

from ragpress.core import Chunk, Document
from ragpress.retrievers.dense import DenseRetriever

TOP_K = 10


def clustered(size: int, queries: int, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Corpus and query vectors around ``size // 100`` random centres, noise of the centres' scale."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((size // 100, dim), dtype=np.float32)
    points = centres[rng.integers(0, len(centres), size + queries)]
    points += rng.standard_normal(points.shape, dtype=np.float32)
    return points[:size], points[size:]


def chunks_for(size: int) -> list[Chunk]:
    """One one-character chunk per vector; chunk ``i`` starts at ``i``, so its start is its id."""
    doc = Document("x" * size)
    return [Chunk.of(doc, i, i + 1) for i in range(size)]


def found_ids(retriever: DenseRetriever, queries: np.ndarray) -> np.ndarray:
    return np.array([[c.start for c in hits] + [-1] * (TOP_K - len(hits)) for hits in retriever.search_vectors(queries, TOP_K)])


def recall(ids: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / TOP_K for a, b in zip(ids, exact)]))


@pytest.fixture(scope="module")
def data():
    corpus, queries = clustered(20_000, 200)
    chunks = chunks_for(len(corpus))
    flat = DenseRetriever(index_type="flat")
    flat.index_vectors(chunks, corpus)
    return corpus, queries, chunks, found_ids(flat, queries)


def built(data, **settings) -> DenseRetriever:
    corpus, _, chunks, _ = data
    retriever = DenseRetriever(device="cpu", **settings)
    retriever.index_vectors(chunks, corpus)
    return retriever


def test_auto_is_exact_below_the_threshold_and_ivf_from_it(data):
    _, queries, _, exact = data
    assert DenseRetriever(exact_below=100).kind_for(99) == "flat" and DenseRetriever(exact_below=100).kind_for(100) == "ivf"
    # nprobe=1 makes IVF visibly approximate, so the results show which index auto built
    assert recall(found_ids(built(data, exact_below=20_001, nprobe=1), queries), exact) == 1.0
    assert recall(found_ids(built(data, exact_below=20_000, nprobe=1), queries), exact) < 0.9  # measured 0.68
    assert DenseRetriever(index_type="hnsw", exact_below=1).kind_for(10) == "hnsw"


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_at_10_against_flat(data, kind):
    _, queries, _, exact = data
    assert recall(found_ids(built(data, index_type=kind), queries), exact) >= 0.97  # measured 1.000 (ivf), 0.998 (hnsw)


def test_hnsw_ef_search_is_applied(data):
    _, queries, _, exact = data
    narrow = recall(found_ids(built(data, index_type="hnsw", ef_search=1), queries), exact)
    assert narrow < recall(found_ids(built(data, index_type="hnsw"), queries), exact) and narrow < 0.97


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip_gives_identical_results(kind, tmp_path):
    corpus, queries = clustered(3_000, 50, seed=1)
    retriever = DenseRetriever(index_type=kind, nprobe=2, ef_search=16, device="cpu")
    retriever.index_vectors(chunks_for(len(corpus)), corpus)
    retriever.save(tmp_path)
    loaded = DenseRetriever.load(tmp_path)
    assert loaded.search_vectors(queries, TOP_K) == retriever.search_vectors(queries, TOP_K)


def test_same_seed_same_ivf_and_another_seed_other_lists(data):
    _, queries, _, _ = data
    first, again, other = (built(data, index_type="ivf", nprobe=1, seed=s) for s in (7, 7, 8))
    assert first.search_vectors(queries, TOP_K) == again.search_vectors(queries, TOP_K)
    assert not np.array_equal(found_ids(first, queries), found_ids(other, queries))


@pytest.mark.parametrize(("settings", "message"), [
    (dict(index_type="annoy"), "index_type must be one of"),
    (dict(nprobe=0), "nprobe must be a positive int"),
    (dict(ef_search=1.5), "ef_search must be a positive int"),
    (dict(exact_below=-1), "exact_below must be a positive int"),
    (dict(nlist=0), "nlist must be a positive int"),
    (dict(seed="0"), "seed .* must be an int"),
])
def test_bad_settings_name_the_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        DenseRetriever(**settings)


def test_bad_vectors_and_too_many_lists_are_refused():
    corpus, _ = clustered(200, 1)
    with pytest.raises(ValueError, match=r"one row per chunk \(199\)"):
        DenseRetriever().index_vectors(chunks_for(199), corpus)
    with pytest.raises(ValueError, match="nlist=500 IVF lists need at least as many vectors"):
        DenseRetriever(index_type="ivf", nlist=500).index_vectors(chunks_for(200), corpus)
    retriever = DenseRetriever()
    retriever.index_vectors(chunks_for(200), corpus)
    with pytest.raises(ValueError, match="query vectors have 32 dimensions; the index has 64"):
        retriever.search_vectors(corpus[:2, :32], TOP_K)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_text_path_finds_each_chunk_with_an_approximate_index(tiny_embedder_path, kind):
    docs = [Document(t, id=f"d{i}") for i, t in enumerate(["with statement", "for loop else", "raise an exception", "lambda"])]
    retriever = DenseRetriever(model=tiny_embedder_path, index_type=kind, top_k=2)
    retriever.index([Chunk.of(d, 0, len(d.text)) for d in docs])
    assert [retriever.run(d.text)[0].doc_id for d in docs] == [d.id for d in docs]


@pytest.mark.gpu
@pytest.mark.skipif(not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0, reason="faiss has no GPU support here")
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_gpu_index_matches_the_cpu_index(data, kind):
    corpus, queries, chunks, _ = data
    gpu = DenseRetriever(index_type=kind)  # device None: on the GPU when faiss has one
    gpu.index_vectors(chunks, corpus)
    assert isinstance(gpu._index, faiss.GpuIndex)
    assert recall(found_ids(gpu, queries), found_ids(built(data, index_type=kind), queries)) >= 0.99
