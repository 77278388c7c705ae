"""What a killed test run left (its namespaces, its scratch roots) goes with the next run,
found by the process mark each recorded, never by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]


def namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_what_a_killed_run_left_is_swept_by_the_next():
    program = """
import os, time
from virshle_core.testing import short_dir
from virshle_core.testing.netlab import Netns
ns = Netns("vsh-swept%d" % (os.getpid() % 100000))
print(ns.name, short_dir(), flush=True)
time.sleep(60)
"""
    killed = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    name, directory = killed.stdout.readline().split()
    killed.kill()  # no tear-down runs
    killed.wait()
    base = Path(directory).parent
    try:
        assert name in namespaces() and base.is_dir()
        sweeper = ("from virshle_core.testing import sweep_short_dirs\n"
                   "from virshle_core.testing.netlab import sweep_namespaces\n"
                   "print(sweep_namespaces(), [str(p) for p in sweep_short_dirs()])\n")
        swept = subprocess.run([sys.executable, "-c", sweeper], capture_output=True, text=True)
        assert swept.returncode == 0, swept.stderr
        assert name in swept.stdout and str(base) in swept.stdout
        assert name not in namespaces() and not base.exists()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
