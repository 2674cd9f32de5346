"""The GPU kits' tools (scripts/device): the dependency check, and the install that joins a kit's parts."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

DEVICE = Path(__file__).resolve().parents[2] / "scripts" / "device"


def kit_deps():
    spec = importlib.util.spec_from_file_location("kit_deps", DEVICE / "kit_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wheel(folder: Path, name: str, *requires: str) -> Path:
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        lines = [f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
        archive.writestr(f"{name}-1.0.dist-info/METADATA", "\n".join(lines) + "\n")
    return path


def test_a_need_met_by_neither_kit_nor_image_is_reported_and_markers_are_read_for_python_312(tmp_path):
    wheels = [
        wheel(tmp_path, "alpha", "beta>=1", "gamma; python_version < '3.12'", "delta; extra == 'docs'", "Numpy>=1"),
        wheel(tmp_path, "beta", "epsilon; sys_platform == 'linux'"),
    ]
    assert kit_deps().missing(wheels, {"numpy"}) == {"epsilon": ["beta"]}
    assert kit_deps().missing(wheels, {"numpy", "epsilon"}) == {}


def parts(tmp_path: Path, payload: dict[str, str], size: int) -> tuple[list[Path], str]:
    """A kit as make_gpu_kits.sh cuts it: a tar of ``payload`` in part-NN folders of ``size`` bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in payload.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    folders = []
    for index, chunk in enumerate(chunks):
        folder = tmp_path / "kits" / "demo" / f"part-{index:02d}"
        folder.mkdir(parents=True)
        (folder / "chunk").write_bytes(chunk)
        (folder / "install.sh").write_text((DEVICE / "kit_install.sh").read_text())
        (folder / "MANIFEST").write_text(f"kit=demo\nindex={index:02d}\nparts={len(chunks)}\nsha256={digest}\ntarget=site\n")
        folders.append(folder)
    return folders, digest


def install(folder: Path, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(folder / "install.sh")], env={**os.environ, "KIT_ROOT": str(root)},
                          capture_output=True, text=True)


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash")
def test_parts_arriving_in_any_order_join_unpack_and_run_the_kits_setup(tmp_path):
    big = "x" * 5000
    folders, _ = parts(tmp_path, {"files/big.txt": big, "setup.sh": 'echo done > "$KIT_ROOT/setup-ran"\n'}, 4096)
    assert len(folders) > 2
    root = tmp_path / "root"
    for folder in reversed(folders[1:]):
        assert "stored" in install(folder, root).stdout
    last = install(folders[0], root)
    assert last.returncode == 0 and "KIT demo READY" in last.stdout, last.stderr
    assert (root / "kits" / "demo" / "files" / "big.txt").read_text() == big
    assert (root / "setup-ran").read_text() == "done\n"
    assert "RAGPRESS_CACHE" in (root / "kits" / "env.sh").read_text()


def test_a_part_from_another_build_fails_the_sha256_check_and_names_the_fix(tmp_path):
    folders, _ = parts(tmp_path, {"files/a.txt": "a" * 3000}, 8192)
    assert len(folders) == 2
    chunk = folders[1] / "chunk"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"!")
    root = tmp_path / "root"
    install(folders[0], root)
    result = install(folders[1], root)
    assert result.returncode == 1
    assert "sha256" in result.stderr and "make_gpu_kits.sh demo" in result.stderr
    assert not (root / "kits" / "demo" / "READY").exists()
