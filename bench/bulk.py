"""Bulk verbs (issue 13's target): `vm stop --all` of 8 running VMs against one `vm stop`.

    .venv/bin/python bench/bulk.py [--runs N] [--count 8]

Each stop is graceful: the ACPI power button, and the guest powers off (the test
guest does at once). Target: the bulk stop of 8 under 2x the single stop. Also
times `vm start` of the 8 by name and `vm pause --all` / `vm resume --all`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing import MARKER, Daemon, remove_short_dirs, wait_for, write_guest_config  # noqa: E402


def timed(daemon: Daemon, *argv: str) -> float:
    start = time.perf_counter()
    result = daemon.cli(*argv, timeout=600)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    return elapsed


def booted(daemon: Daemon, names: list[str]) -> None:
    for name in names:
        uuid = daemon.cli("vm", "info", "--name", name, "--json").json()["uuid"]
        log = daemon.root / "vm" / uuid / "console.log"
        wait_for(lambda: log.exists() and MARKER.encode() in log.read_bytes(), timeout=180,
                 what=f"{name} booting")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vbulk-", dir="/tmp"))
    guest = REPO / ".cache" / "guest"
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(guest)], check=True)
    daemon = Daemon(work, write_guest_config(work, guest, "qemu"))
    names = [f"bulk-{i + 1}" for i in range(args.count)]
    singles, bulks, starts, pauses, resumes = [], [], [], [], []
    try:
        daemon.start()
        assert daemon.cli("vm", "create", "-t", "tiny", "-n", str(args.count),
                          "--name", "bulk").returncode == 0
        for _ in range(args.runs):
            timed(daemon, "vm", "start", names[0])
            booted(daemon, names[:1])
            singles.append(timed(daemon, "vm", "stop", names[0]))
            starts.append(timed(daemon, "vm", "start", *names))
            booted(daemon, names)
            pauses.append(timed(daemon, "vm", "pause", "--all"))
            resumes.append(timed(daemon, "vm", "resume", "--all"))
            bulks.append(timed(daemon, "vm", "stop", "--all"))
        single, bulk = statistics.median(singles), statistics.median(bulks)
        print(f"one `vm stop` (graceful)          : {single * 1000:7.0f} ms (median of {args.runs})")
        print(f"`vm stop --all` of {args.count} running      : {bulk * 1000:7.0f} ms "
              f"({bulk / single:.2f}x the single stop; target < 2x)")
        print(f"`vm start` of {args.count} by name         : {statistics.median(starts) * 1000:7.0f} ms")
        print(f"`vm pause --all`, `vm resume --all`: {statistics.median(pauses) * 1000:7.0f} ms, "
              f"{statistics.median(resumes) * 1000:.0f} ms")
    finally:
        daemon.close()
        remove_short_dirs()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
