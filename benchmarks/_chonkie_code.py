"""chonkie's CodeChunker, run offline for :mod:`benchmarks.chunker_speed`.

chonkie 1.7.0's CodeChunker calls tree-sitter-language-pack >= 1.8 (``process``, ``download_all``),
which loads each grammar from a shared library that it downloads from GitHub; ragpress pins 0.13.0,
whose bundled grammars live inside Python extension modules that export no ``tree_sitter_python``
symbol, so 1.x cannot load them and chonkie cannot call 0.13.0's API at all. Offline we therefore
give 1.x a one-function library exporting ``tree_sitter_python`` that returns the grammar of the
``tree_sitter_python`` wheel, the very grammar ragpress's chunker parses with (the language pointer is
handed over through ``ctypes``), and make chonkie's first-use ``download_all`` a no-op. chonkie's own
algorithm (tree-sitter-language-pack's ``process`` chunking, its token counts) runs unchanged.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import shutil
import subprocess
import tempfile
from pathlib import Path

SHIM = """
static const void *grammar = 0;
void set_grammar(const void *language) { grammar = language; }
const void *tree_sitter_python(void) { return grammar; }
"""


def chonkie_code_chunker(tokenizer, chunk_size: int):
    """A ``chonkie.CodeChunker`` for Python with ``tokenizer``, or a sentence saying why it cannot run."""
    try:
        version = importlib.metadata.version("tree-sitter-language-pack")
    except importlib.metadata.PackageNotFoundError:
        return "tree-sitter-language-pack is not installed"
    if version.startswith("0."):
        return f"it needs tree-sitter-language-pack >= 1.8 and this environment has {version} (ragpress's pin)"
    if shutil.which("cc") is None:
        return "no C compiler to build the grammar shim"
    import tree_sitter_language_pack as pack
    import tree_sitter_python
    from chonkie import CodeChunker

    folder = Path(tempfile.mkdtemp(prefix="chonkie-grammars-"))
    pack.configure(pack.PackConfig(cache_dir=str(folder)))
    libs = Path(pack.cache_dir())
    libs.mkdir(parents=True, exist_ok=True)
    (folder / "shim.c").write_text(SHIM)
    subprocess.run(["cc", "-O2", "-fPIC", "-shared", str(folder / "shim.c"), "-o", str(libs / "libtree_sitter_python.so")], check=True)
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    shim = ctypes.CDLL(str(libs / "libtree_sitter_python.so"))  # the same handle the pack's loader gets
    shim.set_grammar(ctypes.c_void_p(get_pointer(tree_sitter_python.language(), b"tree_sitter.Language")))
    pack.download_all = lambda: 0  # chonkie calls it on first use; there is nothing to download offline
    return CodeChunker(tokenizer=tokenizer, chunk_size=chunk_size, language="python")
