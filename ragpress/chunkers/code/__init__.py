"""LLM code chunking (Glasz et al., "Can LLMs Replace Humans During Code Chunking?", 2025): tree-sitter
units, LLM-chosen partition points where syntax cannot, every chunk within the token limit."""

from ragpress.chunkers.code.grammar import EXTENSIONS, GRAMMARS, UNIT_TYPES, find_units, load_parser
from ragpress.chunkers.code.partition import CodeFile
from ragpress.chunkers.code.stage import CodeChunker

__all__ = ["EXTENSIONS", "GRAMMARS", "UNIT_TYPES", "CodeChunker", "CodeFile", "find_units", "load_parser"]
