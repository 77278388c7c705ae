#!/usr/bin/env python3
"""Build the wheel and the sdist of every distribution: ``virshle`` and each plugin.

    python scripts/dist.py [OUTDIR]      (``make dist``: into dist/)

One version for all of them: the VERSION file (each plugin's VERSION links to it).
``pip install --find-links OUTDIR 'virshle[all]'`` then installs the core with the
built-in plugins.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sources() -> list[Path]:
    """The directories of every distribution: the core first."""
    return [REPO] + sorted(p.parent for p in (REPO / "plugins").glob("*/pyproject.toml"))


def build(outdir: Path) -> list[Path]:
    """Every distribution's wheel and sdist in ``outdir``; the files made."""
    outdir.mkdir(parents=True, exist_ok=True)
    before = set(outdir.iterdir())
    for source in sources():
        subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
                        "--outdir", str(outdir), str(source)], check=True,
                       stdout=subprocess.DEVNULL)
    return sorted(set(outdir.iterdir()) - before)


if __name__ == "__main__":
    made = build(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "dist")
    for path in made:
        print(path)
