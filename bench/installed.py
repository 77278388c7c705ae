"""Virshle as users install it, for the benches: wheels built from this checkout, installed
(not editable) into a fresh venv made with the system's Python.

The editable development install costs about 16 ms per start in import hooks,
which users never pay; start-up figures are taken from this install instead.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"


def install(into: Path | None = None) -> Path:
    """Build every distribution's wheel and install them into a new venv; its bin directory."""
    base = Path(into or tempfile.mkdtemp(prefix="virshle-installed-", dir="/tmp"))
    wheels = base / "wheels"
    venv = base / "venv"
    sys.path.insert(0, str(REPO / "scripts"))
    import dist  # what `make dist` runs

    dist.build(wheels)
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    *map(str, sorted(wheels.glob("*.whl")))], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q",
                    str(venv / "lib")], stdout=subprocess.DEVNULL)
    return venv / "bin"


if __name__ == "__main__":
    print(install(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
