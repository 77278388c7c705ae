"""Bulk verbs (issue 13's target): `vm stop --all` of 8 running VMs against one `vm stop`.

    .venv/bin/python bench/bulk.py [--runs N] [--count 8]

Virshle as users install it (bench/installed.py: the wheels, not the editable
install), so the CLI's start-up is what users pay. Each stop is graceful: the ACPI
power button, and the guest powers off (the test guest does at once). Target: the bulk stop of 8 under 2x the single stop. Also
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

from bench import installed  # noqa: E402
from virshle_core import testing  # noqa: E402
from virshle_core.testing import MARKER, Daemon, remove_short_dirs, wait_for, write_guest_config  # noqa: E402


def timed(daemon: Daemon, *argv: str) -> float:
    start = time.perf_counter()
    result = daemon.cli(*argv, timeout=600)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    return elapsed


def boots(daemon: Daemon, name: str) -> int:
    """How many times the VM's guest has printed its marker (console.log is kept)."""
    uuid = daemon.cli("vm", "info", "--name", name, "--json").json()["uuid"]
    log = daemon.root / "vm" / uuid / "console.log"
    return log.read_bytes().count(MARKER.encode()) if log.exists() else 0


def booted(daemon: Daemon, names: list[str], before: dict[str, int]) -> None:
    for name in names:
        wait_for(lambda: boots(daemon, name) > before.get(name, 0), timeout=180,
                 what=f"{name} booting")
    time.sleep(3)  # the test guest listens to its power button a moment after its marker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=8)
    args = parser.parse_args()
    testing.VIRSHLE = str(installed.install() / "virshle")  # the daemon and the CLI, installed
    work = Path(tempfile.mkdtemp(prefix="vbulk-", dir="/tmp"))
    guest = REPO / ".cache" / "guest"
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(guest)], check=True)
    daemon = Daemon(work, write_guest_config(work, guest, "qemu"))
    names = [f"bulk-{i + 1}" for i in range(args.count)]
    figures: dict[str, list[float]] = {key: [] for key in (
        "single", "single_loaded", "bulk", "single_force", "bulk_force", "start", "pause",
        "resume")}

    def start_all(which: list[str], key: str | None = None) -> None:
        before = {name: boots(daemon, name) for name in which}
        elapsed = timed(daemon, "vm", "start", *which)
        if key:
            figures[key].append(elapsed)
        booted(daemon, which, before)

    try:
        daemon.start()
        assert daemon.cli("vm", "create", "-t", "tiny", "-n", str(args.count),
                          "--name", "bulk").returncode == 0
        for _ in range(args.runs):
            start_all(names[:1])
            figures["single"].append(timed(daemon, "vm", "stop", names[0]))
            start_all(names, "start")
            figures["pause"].append(timed(daemon, "vm", "pause", "--all"))
            figures["resume"].append(timed(daemon, "vm", "resume", "--all"))
            figures["single_loaded"].append(timed(daemon, "vm", "stop", names[0]))
            start_all(names[:1])
            figures["bulk"].append(timed(daemon, "vm", "stop", "--all"))
            start_all(names)
            figures["single_force"].append(timed(daemon, "vm", "stop", "--force", names[0]))
            start_all(names[:1])
            figures["bulk_force"].append(timed(daemon, "vm", "stop", "--all", "--force"))
        median = {key: statistics.median(values) * 1000 for key, values in figures.items()}
        n = args.count
        print(f"medians of {args.runs} runs, {n} VMs of the test guest (TCG here: each guest's "
              "power-off costs host CPU)")
        print(f"one `vm stop`, nothing else running  : {median['single']:7.0f} ms")
        print(f"one `vm stop`, {n - 1} others running      : {median['single_loaded']:7.0f} ms")
        print(f"`vm stop --all` of {n} running          : {median['bulk']:7.0f} ms "
              f"({median['bulk'] / median['single']:.2f}x the first, "
              f"{median['bulk'] / median['single_loaded']:.2f}x the second; target < 2x)")
        print(f"one `vm stop --force`, {n - 1} others on   : {median['single_force']:7.0f} ms")
        print(f"`vm stop --all --force` of {n}          : {median['bulk_force']:7.0f} ms "
              f"({median['bulk_force'] / median['single_force']:.2f}x)")
        print(f"`vm start` of {n} by name              : {median['start']:7.0f} ms")
        print(f"`vm pause --all`, `vm resume --all`  : {median['pause']:7.0f} ms, "
              f"{median['resume']:.0f} ms")
    finally:
        daemon.close()
        remove_short_dirs()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
