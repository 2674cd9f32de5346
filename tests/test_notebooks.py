"""The notebooks are committed with their outputs (so their pictures show where they are read):
check that the committed cells are the ones ``notebooks/generate.py`` writes, that every code cell
ran and nothing failed, and that each draws a picture; then (integration, bundled real models) run
every notebook again from scratch."""

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _generator():
    spec = importlib.util.spec_from_file_location("notebook_generator", ROOT / "notebooks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generator()


@pytest.fixture(scope="module")
def kernel() -> str:
    """The python3 kernel; its spec is installed for this user if Jupyter does not know it yet."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(user=True)
    return "python3"


def _pictures(notebook) -> int:
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs)


def test_every_written_notebook_is_committed():
    assert {p.stem for p in COMMITTED} == set(generate.NOTEBOOKS)


@pytest.mark.parametrize("name", sorted(generate.NOTEBOOKS))
def test_committed_notebook_is_current_and_carries_its_outputs(name):
    committed = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    written = generate.build(name)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in written.cells], (
        f"notebooks/{name}.ipynb differs from what notebooks/generate.py writes: run `python notebooks/generate.py {name}`"
    )
    code = [cell for cell in committed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), f"{name}.ipynb has cells that were not run: run `python notebooks/generate.py {name}`"
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert _pictures(committed) >= 1, f"{name}.ipynb shows no picture"


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(generate.NOTEBOOKS))
def test_notebook_runs_and_draws(name, kernel):
    notebook = generate.execute(generate.build(name), timeout=300)
    assert not [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"]
    assert _pictures(notebook) >= 1, f"{name}.ipynb shows no picture"
