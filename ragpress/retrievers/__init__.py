"""Retrievers (``query -> list[Chunk]``), rerankers and fusion."""
