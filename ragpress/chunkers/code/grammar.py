"""Which tree-sitter grammar reads which language, and which syntax nodes are units (functions,
classes, methods): shared by the code chunker and LongCodeZip."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re

from ragpress.core.extras import require

EXTENSIONS = {
    ".py": "python", ".js": "javascript", ".ts": "typescript", ".tsx": "tsx", ".go": "go", ".rs": "rust",
    ".java": "java", ".c": "c", ".h": "c", ".cpp": "cpp", ".cc": "cpp", ".rb": "ruby", ".php": "php",
    ".m": "mumps", ".mps": "mumps", ".asm": "assembly", ".s": "assembly", ".mlc": "assembly",
}  # fmt: skip
GRAMMARS = {
    "typescript": "tree_sitter_typescript:language_typescript",
    "tsx": "tree_sitter_typescript:language_tsx",
    "php": "tree_sitter_php:language_php",
    "csharp": "tree_sitter_c_sharp:language",
}
UNIT_TYPES = re.compile(r"decorated_definition|\w*(function|method|class|interface|struct|impl|trait|enum|constructor)_(definition|declaration|item)")
@functools.cache
def load_parser(language: str, spec: str = ""):
    """A tree-sitter parser for ``language``, or ``None`` when no grammar is installed. ``spec``
    is ``"module"`` or ``"module:function"``; by default ``tree_sitter_<language>`` is tried, then
    ``tree-sitter-language-pack`` 0.x (1.x changed its API and is not used)."""
    require("tree_sitter", what="Code chunking")
    import tree_sitter

    module_name, _, function = (spec or GRAMMARS.get(language, f"tree_sitter_{language}")).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    if module is not None:
        if not hasattr(module, function or "language"):
            raise ValueError(f"Grammar module {module_name!r} has no function {function or 'language'!r}; map the language as 'module:function'.")
        return tree_sitter.Parser(tree_sitter.Language(getattr(module, function or "language")()))
    try:
        if importlib.metadata.version("tree-sitter-language-pack").startswith("0."):
            from tree_sitter_language_pack import get_parser

            return get_parser(language)
    except (importlib.metadata.PackageNotFoundError, LookupError, ValueError):
        pass
    return None


def find_units(node) -> list:
    """The outermost function/class/method nodes below ``node`` (not crossing another unit), in source
    order; walked with a stack, since one long expression nests deeper than Python's recursion limit."""
    out, stack = [], list(reversed(node.named_children))
    while stack:
        child = stack.pop()
        if UNIT_TYPES.fullmatch(child.type):
            out.append(child)
        else:
            stack.extend(reversed(child.named_children))
    return out
