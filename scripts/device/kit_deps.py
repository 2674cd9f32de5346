"""Check that a GPU kit's wheels bring everything they need: every ``Requires-Dist`` of every wheel (its
markers evaluated for the GPU image's CPython 3.12 on x86-64 Linux, extras left out) is met by another
wheel of the kits or by a package the image already has (``image_packages.txt``, names only: versions
there are not checked). Exit status 1 and the missing names when one is not met.

    python3 scripts/device/kit_deps.py .device/kits/*/payload/wheels
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ENVIRONMENT = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
               "platform_machine": "x86_64", "os_name": "posix", "implementation_name": "cpython",
               "platform_python_implementation": "CPython", "extra": ""}


def requirements(wheel: Path) -> list[Requirement]:
    """The wheel's unconditional requirements on the GPU image."""
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(meta).decode().splitlines()
    found = [Requirement(line.split(":", 1)[1].strip()) for line in lines if line.startswith("Requires-Dist:")]
    return [r for r in found if r.marker is None or r.marker.evaluate(ENVIRONMENT)]


def missing(wheels: list[Path], image: set[str]) -> dict[str, list[str]]:
    """Needed name -> the wheels that need it, for every need neither the kits nor the image meet."""
    have = image | {canonicalize_name(w.name.split("-")[0]) for w in wheels}
    out: dict[str, list[str]] = {}
    for wheel in wheels:
        for req in requirements(wheel):
            if canonicalize_name(req.name) not in have:
                out.setdefault(canonicalize_name(req.name), []).append(wheel.name.split("-")[0])
    return out


def main(folders: list[str]) -> int:
    listed = (Path(__file__).parent / "image_packages.txt").read_text().splitlines()
    image = {canonicalize_name(n) for n in listed if n and not n.startswith("#")}
    wheels = sorted(w for f in folders for w in Path(f).glob("*.whl"))
    if not wheels:
        print(f"kit_deps: no wheels under {' '.join(folders)}: build the kits first (scripts/device/make_gpu_kits.sh)", file=sys.stderr)
        return 1
    gaps = missing(wheels, image)
    for name, needers in sorted(gaps.items()):
        print(f"MISSING {name} (needed by {', '.join(sorted(set(needers)))}): add it to its kit in make_gpu_kits.sh")
    print(f"kit_deps: {len(wheels)} wheels, {len(gaps)} needs unmet")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
