import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ragpress.core import extras

ROOT = Path(__file__).resolve().parents[2]


def test_the_light_core_imports_no_model_library():
    code = (
        "import sys, ragpress\n"
        "from ragpress.chunkers.token_window import TokenWindowChunker\n"
        "from ragpress.compressors.budget_packer import BudgetPacker\n"
        "from ragpress.generators.openai_compatible import OpenAICompatibleGenerator\n"
        "from ragpress.retrievers.bm25 import BM25Retriever\n"
        "from ragpress.retrievers.fusion import ReciprocalRankFusion\n"
        "print(sorted(m for m in ('torch', 'faiss', 'spacy', 'matplotlib', 'sentence_transformers', 'peft') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_extra_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(extras.EXTRA_OF, "no_such_module_for_ragpress", "probe")
    with pytest.raises(ImportError, match=r"Probe needs no_such_module_for_ragpress, which is not installed: pip install 'ragpress\[probe\]'"):
        extras.require("no_such_module_for_ragpress", "matplotlib", what="Probe")
    extras.require("matplotlib", "torch")  # installed: no error


def test_loading_a_model_without_its_extra_says_what_to_install(monkeypatch):
    from ragpress.models import load_embedder

    monkeypatch.setattr(extras, "installed", lambda module: module != "sentence_transformers")
    with pytest.raises(ImportError, match=r"sentence_transformers, which is not installed: pip install 'ragpress\[models\]'"):
        load_embedder("some-embedder-never-loaded", device="cpu")


def test_every_extra_is_declared_in_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras.EXTRAS) <= set(declared)
    assert set(extras.EXTRAS) - {"llamaindex", "langchain"} <= {e for e in declared["all"][0].split("[")[1].rstrip("]").split(",")}
