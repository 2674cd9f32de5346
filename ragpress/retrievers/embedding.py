"""Sentence embeddings for the dense retrievers (faiss in memory, LanceDB on disk): one way to
embed, unit length and float32, and one warning when text runs past the embedder's window."""

from __future__ import annotations

import warnings

import numpy as np

from ragpress.core.loaders import load_embedder


def embed_texts(model: str, device: str | None, texts: list[str], batch_size: int | None = None, chunks: bool = False,
                dtype: str | None = None) -> np.ndarray:
    """Unit-length float32 embeddings of ``texts`` by ``model`` run in ``dtype`` (None: its checkpoint's;
    sentence-transformers' batch size unless given). For ``chunks`` (what an index stores) it shows progress on long work and warns
    about every text longer than the embedder's window, which is embedded from its first tokens only."""
    embedder = load_embedder(model, device, dtype)
    options = {} if batch_size is None else {"batch_size": batch_size}
    if chunks:
        _warn_truncation(embedder, model, texts)
        options["show_progress_bar"] = len(texts) > (batch_size or 32)
    vectors = embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, **options)
    return np.asarray(vectors, dtype=np.float32)


def _warn_truncation(embedder, model: str, texts: list[str]) -> None:
    limit = embedder.max_seq_length
    lengths = [len(x) for x in embedder.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]]
    over = sum(n > limit for n in lengths)
    if over:
        warnings.warn(
            f"{over} of {len(texts)} chunks are longer than {model}'s {limit}-token window and are embedded "
            f"from their first {limit} tokens only; chunk with max_tokens <= {limit - 2} to embed all text.",
            stacklevel=4,
        )
