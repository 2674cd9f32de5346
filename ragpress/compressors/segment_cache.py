"""A cache of compressed segments for soft compressors (CompLLM, ARC-Encoder).

Soft compressors that encode segments independently (CompLLM, arXiv:2509.19228, Sec. 3: "reusability")
can reuse a segment's embeddings whenever the same text comes back, in another query or another
document. :class:`SegmentCache` keys each segment by a SHA-256 of its text and holds the rows it was
compressed into. The rows only mean something to one decoder, one set of trained weights and one
rate, so every cache carries an *identity* (a flat ``str -> str`` mapping such as decoder name,
decoder config hash, compressor, adapter weights hash, rate); a cache file made under another identity
is refused on load with a message naming what differs.

Files are safetensors (one tensor per segment, named by its key; the identity in the header metadata):
loading never unpickles anything.
"""

from __future__ import annotations

from ragpress.core.extras import require

require("torch", "safetensors", what="The segment cache of soft compressors")

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

FORMAT = "ragpress-segment-cache/1"


def text_key(text: str) -> str:
    """The cache key of a segment: SHA-256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def tensors_hash(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, shapes, dtypes and bytes of ``tensors`` (e.g. trained adapter weights)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def config_hash(config) -> str:
    """SHA-256 of a transformers config's architecture fields (not its file paths or library version)."""
    fields = config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "_commit_hash", "architectures"):
        fields.pop(volatile, None)
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


class SegmentCache:
    """Compressed rows of segments, keyed by the segment's text, under one ``identity``.

    >>> cache = SegmentCache({"decoder": "smollm2-135m", "rate": "2"})
    >>> cache.put("Hello world.", torch.zeros(2, 8)); cache.get("Hello world.").shape
    torch.Size([2, 8])
    """

    def __init__(self, identity: Mapping[str, str]):
        if not identity or not all(isinstance(k, str) and isinstance(v, str) for k, v in identity.items()):
            raise ValueError("A segment cache needs a non-empty str -> str identity (decoder, config hash, adapters hash, rate, ...).")
        self.identity = dict(identity)
        self._rows: dict[str, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, text: str) -> bool:
        return text_key(text) in self._rows

    def __repr__(self) -> str:
        return f"SegmentCache({len(self)} segments, hits={self.hits}, misses={self.misses}, identity={self.identity})"

    def get(self, text: str) -> torch.Tensor | None:
        """The rows cached for ``text``, or None (counted as a hit or a miss)."""
        rows = self._rows.get(text_key(text))
        if rows is None:
            self.misses += 1
        else:
            self.hits += 1
        return rows

    def get_many(self, texts: Sequence[str]) -> list[torch.Tensor | None]:
        return [self.get(text) for text in texts]

    def put(self, text: str, rows: torch.Tensor) -> None:
        if not isinstance(rows, torch.Tensor) or rows.ndim != 2:
            raise ValueError(f"A cached segment is a [n, hidden] tensor, got {getattr(rows, 'shape', type(rows).__name__)}.")
        if not torch.isfinite(rows).all():
            raise ValueError("A cached segment holds NaN or infinite values; the compressor that made it is broken.")
        self._rows[text_key(text)] = rows.detach()

    def clear(self) -> None:
        self._rows.clear()
        self.hits = self.misses = 0

    def update(self, other: SegmentCache) -> int:
        """Add the segments of ``other`` (made under the same identity) that this cache lacks; the
        number added. A precomputing job merges its workers' caches this way."""
        self.check_identity(other.identity, self.identity, "the cache to merge")
        fresh = {key: rows for key, rows in other._rows.items() if key not in self._rows}
        self._rows.update(fresh)
        return len(fresh)

    def to_bytes(self) -> bytes:
        """The cache as safetensors bytes, with the identity and a hash of the rows in the header metadata."""
        from safetensors.torch import save

        tensors = {key: rows.cpu().contiguous() for key, rows in self._rows.items()}
        digest = tensors_hash(tensors)  # the rows themselves, so an edited file is refused
        return save(tensors, metadata={"format": FORMAT, "identity": json.dumps(self.identity, sort_keys=True), "rows_sha256": digest})

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_bytes` to ``path``, whole or not at all (a temporary file, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(self.to_bytes())
        partial.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, identity: Mapping[str, str]) -> SegmentCache:
        """Read a cache written by :meth:`save`, refusing it unless it was made under ``identity``."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No segment cache at {path}.")
        return cls.from_bytes(path.read_bytes(), identity, path)

    @classmethod
    def from_bytes(cls, data: bytes, identity: Mapping[str, str], source: str | Path = "the segment cache") -> SegmentCache:
        """A cache from :meth:`to_bytes`, refused unless made under ``identity`` with its rows as written."""
        from safetensors.torch import load

        try:
            size = int.from_bytes(data[:8], "little")
            metadata = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
        except ValueError as error:
            raise ValueError(f"{source} is not a safetensors file ({error}).") from None
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{source} is not a ragpress segment cache (format {metadata.get('format')!r}, expected {FORMAT!r}).")
        cls.check_identity(json.loads(metadata["identity"]), identity, source)
        rows = load(data)
        if metadata.get("rows_sha256") != tensors_hash(rows):
            raise ValueError(f"Refusing the segment cache {source}: its rows differ from what SegmentCache.save wrote (or it predates "
                             "row hashes); delete it and let the compressor rebuild it.")
        bad = [key for key, value in rows.items() if value.ndim != 2 or not torch.isfinite(value).all()]
        if bad:
            raise ValueError(f"Refusing the segment cache {source}: {len(bad)} segments are not finite [n, hidden] rows; delete it.")
        cache = cls(identity)
        cache._rows = rows
        return cache

    @staticmethod
    def check_identity(stored: Mapping[str, str], wanted: Mapping[str, str], path: str | Path = "the cache") -> None:
        differs = [
            f"{name}: {stored.get(name, '<missing>')!r} in the cache, {wanted.get(name, '<missing>')!r} now"
            for name in sorted(set(stored) | set(wanted))
            if stored.get(name) != wanted.get(name)
        ]
        if differs:
            raise ValueError(
                f"Refusing the segment cache {path}: it was made for another model, config or adapters ("
                + "; ".join(differs)
                + "). Its embeddings would be meaningless here: delete the file or use the settings it was made with."
            )
