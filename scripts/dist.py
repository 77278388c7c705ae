#!/usr/bin/env python3
"""Build the wheel and the sdist of every distribution: ``virshle`` and each plugin.

    python scripts/dist.py [--wheelhouse] [OUTDIR]      (``make dist``: both, into dist/)

One version for all of them: the VERSION file (each plugin's VERSION links to it).
``pip install --find-links OUTDIR 'virshle[all]'`` then installs the core with the
built-in plugins. With ``--wheelhouse``, OUTDIR also gets a wheel of every runtime
dependency (for this machine's Python and architecture), so that ``pip install
--no-index --find-links OUTDIR 'virshle[all]'`` needs no package index at all.

It needs only ``build`` and ``setuptools`` (``scripts/dist.sh`` makes a venv with them):
not QEMU, Open vSwitch or Kea.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sources() -> list[Path]:
    """The directories of every distribution: the core first."""
    return [REPO] + sorted(p.parent for p in (REPO / "plugins").glob("*/pyproject.toml"))


def build(outdir: Path, warned: list[str] | None = None) -> list[Path]:
    """Every distribution's wheel and sdist in ``outdir``; the files made. The warnings
    the builds print go to ``warned`` (else to stderr)."""
    outdir.mkdir(parents=True, exist_ok=True)
    before = set(outdir.iterdir())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for source in sources():
        built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist",
                                "--wheel", "--outdir", str(outdir), str(source)],
                               capture_output=True, text=True, env=env)
        if built.returncode != 0:
            sys.exit(f"dist: building {source.name} failed:\n{built.stdout}{built.stderr}")
        for line in warnings_in(built.stdout + built.stderr):  # none expected: say them
            if warned is None:
                print(f"dist: {source.name}: {line}", file=sys.stderr)
            else:
                warned.append(f"{source.name}: {line}")
    return sorted(set(outdir.iterdir()) - before)


def warnings_in(output: str) -> list[str]:
    """The warning lines of a build's output."""
    return [line.strip() for line in output.splitlines() if "warning" in line.lower()]


def wheelhouse(outdir: Path) -> list[Path]:
    """A wheel of every runtime dependency of ``virshle[all]`` in ``outdir`` (which holds
    Virshle's own); the files added."""
    before = set(outdir.iterdir())
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                              "--disable-pip-version-check", "--only-binary", ":all:",
                              "--dest", str(outdir), "--find-links", str(outdir),
                              "virshle[all]"], capture_output=True, text=True)
    for line in fetched.stderr.splitlines():  # a pip.conf's index that is not there: noise
        if line.strip() and not line.startswith("WARNING: Location"):
            print(line, file=sys.stderr)
    if fetched.returncode != 0:
        sys.exit("dist: the wheelhouse could not be made (pip download failed)")
    return sorted(set(outdir.iterdir()) - before)


if __name__ == "__main__":
    args = sys.argv[1:]
    with_deps = "--wheelhouse" in args
    args = [arg for arg in args if arg != "--wheelhouse"]
    outdir = Path(args[0]) if args else REPO / "dist"
    made = build(outdir) + (wheelhouse(outdir) if with_deps else [])
    for path in made:
        print(path)
