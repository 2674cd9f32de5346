"""The optional precompute step of a Ray Data job: a soft compressor's segment cache (CompLLM,
ARC-Encoder) for every chunk the job stores, so that compressing a retrieved chunk at query time
takes its rows from the cache instead of running the encoder (CompLLM compresses segments
independently precisely so they can be computed once and reused, arXiv:2509.19228, Sec. 3).

:class:`SegmentWorker` actors load the compressor's encoder once and add to each batch of embedded
rows a ``segments`` column: the batch's new cache as safetensors bytes on its first row, empty bytes
on the others. The driver's :class:`SegmentWriter` saves each write batch's segments as a part file
*before* the ledger records its documents, so a job stopped half way loses no segment of a document
it recorded; :meth:`SegmentWriter.finish` merges the parts (this run's and any a stopped run left)
into the one cache file the compressor loads (its ``cache`` setting)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa

from ragpress.compressors.base import SoftCompressor
from ragpress.compressors.segment_cache import SegmentCache
from ragpress.retrievers.lancedb import stored_chunk


class SegmentWorker:
    """Computes ``compressor``'s segments of a batch of table rows (:func:`stored_rows`), its encoder
    loaded once when the worker starts."""

    def __init__(self, compressor: SoftCompressor):
        self.compressor = compressor
        self.identity = compressor.identity()  # loads the encoder now

    def __call__(self, batch: pa.Table) -> pa.Table:
        chunks = [stored_chunk(row) for row in batch.drop_columns(["vector"]).to_pylist()]
        cache = self.compressor.precompute(chunks)
        blobs = [cache.to_bytes()] + [b""] * (len(batch) - 1)
        return batch.append_column("segments", pa.array(blobs, pa.large_binary()))


class SegmentWriter:
    """Keeps the segments that reach the driver, as part files beside ``path`` until :meth:`finish`."""

    def __init__(self, compressor: SoftCompressor, path: str):
        self.identity, self.path = compressor.identity(), Path(path)
        self.parts = self.path.with_name(self.path.name + ".parts")

    def write(self, batch: pa.Table) -> pa.Table:
        """Save the segments of ``batch`` as a part file; ``batch`` without its ``segments`` column."""
        part = SegmentCache(self.identity)
        for blob in batch["segments"].to_pylist():
            if blob:
                part.update(SegmentCache.from_bytes(blob, self.identity, "a worker's segments"))
        if len(part):
            part.save(self.parts / f"{uuid.uuid4().hex}.safetensors")
        return batch.drop_columns(["segments"])

    def finish(self) -> int:
        """Merge the part files into the cache file (written only when something is new); the number
        of segments added."""
        parts = sorted(self.parts.glob("*.safetensors")) if self.parts.exists() else []
        cache = SegmentCache.load(self.path, self.identity) if self.path.exists() else SegmentCache(self.identity)
        added = sum(cache.update(SegmentCache.load(part, self.identity)) for part in parts)
        if added:
            cache.save(self.path)
        for part in parts:
            part.unlink()
        if self.parts.exists():
            self.parts.rmdir()
        return added
