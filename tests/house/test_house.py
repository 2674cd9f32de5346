"""The house rules that keep ragpress readable, checked on every run: imports follow the data
(import-linter's contracts in pyproject.toml: layers, private modules, and our private-names
contract), and no module grows past 300 lines unless the README says why."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold():
    pytest.importorskip("importlinter")
    from importlinter.cli import lint_imports

    sys.path.insert(0, str(ROOT))  # the private-names contract lives in tests/house
    try:
        assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0, "run `lint-imports` to see the broken contract"
    finally:
        sys.path.remove(str(ROOT))


def test_private_names_contract_finds_a_private_import(tmp_path, monkeypatch):
    from tests.house.private_names import private_imports

    package = tmp_path / "ragpress_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("_secret = 1\n")
    (package / "b.py").write_text("from ragpress_probe.a import (\n    _secret,\n)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert private_imports("ragpress_probe.b") == [(1, "ragpress_probe.a", "_secret")]
    assert private_imports("ragpress_probe.a") == []


def test_no_module_is_over_300_lines_unless_the_readme_says_why():
    allowed = set(re.findall(r"`(ragpress/[\w/]+\.py)` \(\d+ lines\)", (ROOT / "README.md").read_text()))
    long = {str(p.relative_to(ROOT)) for p in (ROOT / "ragpress").rglob("*.py") if len(p.read_text().splitlines()) > 300}
    assert long <= allowed, f"over 300 lines without a reason in the README: {sorted(long - allowed)}"


def test_readme_stage_table_lists_exactly_the_stages():
    from ragpress.cli import stages

    table = re.findall(r"^\| \w+ \| `([\w.]+)` \|", (ROOT / "README.md").read_text(), re.M)
    assert sorted(table) == sorted(path for path, _ in stages())


def test_readme_layout_names_every_method_folder():
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    folders = {f"{p.parent.name}/" for p in (ROOT / "ragpress").glob("*/*/__init__.py")}
    files = {p.name for p in (ROOT / "ragpress").glob("*/*.py") if p.name != "__init__.py"} | {"models.py", "corpora.py"}
    missing = {name for name in folders | files if name not in layout}
    assert not missing, f"the README's layout does not name {sorted(missing)}"
