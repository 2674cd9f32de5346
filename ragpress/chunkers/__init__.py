"""Chunkers: ``list[Document] -> list[Chunk]``."""
