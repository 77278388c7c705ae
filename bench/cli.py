"""The control plane's figures (issue 10's table), as users install Virshle.

    .venv/bin/python bench/cli.py [--runs N]

Builds the wheels of this checkout and installs them (not editable) into a
fresh venv made with /usr/bin/python3 (bench/installed.py), runs a node
daemon from it, and times each row of the table against
`/usr/bin/python3 -c pass`, measured in pairs in the same run:

    vm ls with 0 VMs, 100 defined, 8 running guests, 16 running busy guests;
    create + rm one VM; 16 x `vm stop --force` at once, and as one `vm stop --force --all`;
    `vm start`;
    create 100 in one command; the daemon's RSS with 8 running.

The guests are the test guest under this machine's accelerator (TCG here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import installed  # noqa: E402
from virshle_core import testing  # noqa: E402
from virshle_core.testing import Daemon, remove_short_dirs, short_dir, write_guest_config  # noqa: E402

PYTHON = ["/usr/bin/python3", "-c", "pass"]


def paired(argv: list[str], env: dict, runs: int, before=None) -> tuple[float, float]:
    """Medians of ``argv`` and of a bare interpreter start, timed alternately."""
    ours, bare = [], []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(PYTHON, stdout=subprocess.DEVNULL)
        bare.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(bare)


def once(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    return elapsed


def row(label: str, ours: float, bare: float, target: str) -> None:
    print(f"{label:<34} {ours * 1000:8.1f} ms  {ours / bare:5.2f}x python3 -c pass"
          f"  (target {target})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    bin_dir = installed.install()
    virshle = str(bin_dir / "virshle")
    testing.VIRSHLE = virshle  # the daemon and the CLI as users install them
    guest = REPO / ".cache" / "guest"
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(guest)], check=True)
    directory = short_dir("cli")
    config = write_guest_config(directory, guest, "qemu")
    node = Daemon(directory, config)
    node.start()
    env = {**os.environ, "VIRSHLE_CONFIG": str(config)}
    v = [virshle]
    try:
        once(v + ["vm", "ls"], env)  # the first run validates the configuration, once
        _, bare = paired(PYTHON, env, 5)
        print(f"{'python3 -c pass':<34} {bare * 1000:8.1f} ms")
        row("vm ls, 0 VMs", *paired(v + ["vm", "ls"], env, args.runs), "<= 2.5x")
        row("vm ls --json, 0 VMs", *paired(v + ["vm", "ls", "--json"], env, args.runs), "-")

        cold = once(v + ["vm", "create", "-t", "tiny", "-n", "100", "--name", "cold"], env)
        warm = []
        for batch in ("cold", "warm1", "warm2"):
            for index in range(1, 101):
                once(v + ["vm", "rm", "--name", f"{batch}-{index}"], env)
            # the last batch, "bulk", stays for the listing below
            following = {"cold": "warm1", "warm1": "warm2", "warm2": "bulk"}[batch]
            warm.append(once(v + ["vm", "create", "-t", "tiny", "-n", "100", "--name", following], env))
        print(f"{'create 100 in one command':<34} {statistics.median(warm) * 1000:8.1f} ms  "
              f"(keep <= 0.36 s; median of 3; {cold * 1000:.0f} ms the first time, which fills "
              "the image cache)")
        row("vm ls, 100 defined", *paired(v + ["vm", "ls"], env, args.runs), "<= 3x")
        for index in range(1, 101):
            subprocess.run(v + ["vm", "rm", "--name", f"bulk-{index}"], env=env,
                           stdout=subprocess.DEVNULL)

        pairs = []
        for _ in range(max(5, args.runs // 3)):
            start = time.perf_counter()
            once(v + ["vm", "create", "-t", "tiny", "--name", "one"], env)
            once(v + ["vm", "rm", "--name", "one"], env)
            elapsed = time.perf_counter() - start
            pairs.append(elapsed)
        print(f"{'create + rm one VM':<34} {statistics.median(pairs) * 1000:8.1f} ms  "
              "(virsh define + undefine: 60 ms; target <= 2x)")

        once(v + ["vm", "create", "-t", "tiny", "-n", "16", "--name", "g"], env)
        starts = []
        for _ in range(5):  # on a quiet host: start, then kill it again
            starts.append(once(v + ["vm", "start", "--name", "g-1"], env))
            once(v + ["vm", "stop", "--force", "--name", "g-1"], env)
        print(f"{'vm start returns':<34} {statistics.median(starts) * 1000:8.1f} ms  "
              "(keep <= 300 ms)")
        for i in range(1, 9):
            once(v + ["vm", "start", "--name", f"g-{i}"], env)
        time.sleep(5)
        rss = psutil.Process(node.pid).memory_info().rss / 1024**2
        row("vm ls, 8 running guests", *paired(v + ["vm", "ls"], env, args.runs), "as with 0")
        print(f"{'daemon RSS, 8 running':<34} {rss:8.1f} MiB  (target <= 40 MiB)")
        for i in range(9, 17):
            once(v + ["vm", "start", "--name", f"g-{i}"], env)
        row("vm ls, 16 running busy guests", *paired(v + ["vm", "ls"], env, args.runs),
            "<= 1.3x the listing with none running")
        daemon_side = []
        for _ in range(args.runs):  # the daemon's own part of it, without the CLI's start
            from bench.scale import request

            daemon_side.append(request(node, "GET", "/vms")[0])
        print(f"{'  of which GET /vms in the daemon':<34} {statistics.median(daemon_side) * 1000:8.1f} ms")
        start = time.perf_counter()  # the floor: 16 bare interpreters at once, same load
        for bare in [subprocess.Popen(PYTHON) for _ in range(16)]:
            bare.wait()
        floor = time.perf_counter() - start
        start = time.perf_counter()
        stops = [subprocess.Popen(v + ["vm", "stop", "--force", "--name", f"g-{i}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for i in range(1, 17)]
        failed = [p for p in stops if p.wait() != 0]
        elapsed = time.perf_counter() - start
        print(f"{'16 x vm stop --force at once':<34} {elapsed * 1000:8.1f} ms  (target <= 2 s)"
              + (f"  {len(failed)} FAILED" if failed else ""))
        print(f"{'  16 x python3 -c pass at once':<34} {floor * 1000:8.1f} ms  (the same load: "
              f"{elapsed / floor:.2f}x)")
        once(v + ["vm", "start", *(f"g-{i}" for i in range(1, 17))], env)  # one bulk start
        time.sleep(5)
        start = time.perf_counter()
        once(v + ["vm", "stop", "--force", "--all"], env)
        elapsed = time.perf_counter() - start
        print(f"{'vm stop --force --all (16 busy)':<34} {elapsed * 1000:8.1f} ms  (the same in one "
              "command: target <= 2 s)")
    finally:
        node.close()
        remove_short_dirs()


if __name__ == "__main__":
    main()
