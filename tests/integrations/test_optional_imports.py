"""LlamaIndex and LangChain are optional extras: ragpress never imports them unless asked."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("ragpress.integrations.llama_index", "ragpress.integrations.langchain")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_importing_every_ragpress_module_but_the_adapters_imports_neither_library():
    done = run_python(f"""
        import importlib, pathlib, sys
        import ragpress
        root = pathlib.Path(ragpress.__path__[0])
        # every module by its file (walking packages would import the adapter packages themselves)
        names = {{".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__") for p in root.rglob("*.py")}}
        names = sorted(n for n in names if not any(n == a or n.startswith(a + ".") for a in {ADAPTERS!r}))
        for name in names:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("llama_index", "langchain", "langchain_core", "langchain_text_splitters", "langchain_classic"))
        print(len(names), leaked)
    """)
    assert done.returncode == 0, done.stderr
    count, leaked = done.stdout.split(" ", 1)
    assert int(count) >= 10 and leaked.strip() == "[]"


@pytest.mark.parametrize(("module", "blocked", "extra"), [(ADAPTERS[0], "llama_index", "llamaindex"), (ADAPTERS[1], "langchain_core", "langchain")])
def test_an_adapter_without_its_library_says_how_to_install_it(module, blocked, extra):
    done = run_python(f"""
        import sys
        sys.modules[{blocked!r}] = None  # as if not installed
        import {module}
    """)
    assert done.returncode != 0 and f"pip install 'ragpress[{extra}]'" in done.stderr
