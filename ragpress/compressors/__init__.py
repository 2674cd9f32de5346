"""Compressors: ``query, list[Chunk] -> Context``."""
