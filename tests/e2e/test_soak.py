"""The seeded soak's short form (issue 20): bench/soak.py runs two nodes through 200 random
operations and faults and checks the node's invariants after each fault; any broken
invariant fails the test with the seed and step to replay it.

``VIRSHLE_SOAK_SEED`` picks another seed (the default is fixed, so that CI replays the
same mix); ``VIRSHLE_SOAK_STEPS`` another length.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
for tool in ("qemu-system-x86_64", "qemu-img"):
    if not shutil.which(tool):
        pytestmark.append(pytest.mark.skip(reason=f"{tool} is not installed"))


def test_the_soak_breaks_no_invariant():
    seed = os.environ.get("VIRSHLE_SOAK_SEED", "20261206")
    steps = os.environ.get("VIRSHLE_SOAK_STEPS", "200")
    run = subprocess.run([sys.executable, str(REPO / "bench" / "soak.py"), "--steps", steps,
                          "--seed", seed], capture_output=True, text=True, timeout=1100)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "no invariant broken" in run.stdout
