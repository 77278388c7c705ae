"""Start-up and memory figures of the CLI and the daemon (issue 2's targets).

    .venv/bin/python bench/run.py [--runs N]

Prints medians over N runs of: a bare interpreter start, `virshle --help`,
`virshle node ls` against a running local daemon (with the ratio to the
bare start; target <= 5x), the modules `node ls` imports that it must not
(asyncssh, asyncio, sqlite-utils), and the daemon's resident memory when idle
(target <= 60 MB).
"""

from __future__ import annotations

import argparse
import shutil
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing import Daemon, remove_short_dirs, write_config  # noqa: E402

BIN = Path(sys.executable).parent
VIRSHLE = str(BIN / "virshle")


def timed(commands: list[list[str]], env: dict, runs: int) -> list[float]:
    """Median wall time of each command; runs interleaved so drift hits all alike."""
    samples: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for i, argv in enumerate(commands):
            start = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True)
            samples[i].append(time.perf_counter() - start)
    return [statistics.median(s) for s in samples]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    # Measure the product as installed: with bytecode (some shells set PYTHONDONTWRITEBYTECODE).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO)],
                   stdout=subprocess.DEVNULL, check=False)
    scratch = Path(tempfile.mkdtemp(prefix="virshle-bench-"))
    daemon = Daemon(scratch, write_config(scratch, extra='\n[dhcp.kea]\nurl = "tcp://localhost:5547"\n'))
    env = {**os.environ, "VIRSHLE_CONFIG": str(daemon.config)}
    try:
        daemon.start("-q")
        subprocess.run([VIRSHLE, "node", "ls"], env=env, check=True, stdout=subprocess.DEVNULL)

        bare, helps, node_ls = timed(
            [[sys.executable, "-c", "pass"], [VIRSHLE, "--help"], [VIRSHLE, "node", "ls"]],
            env, args.runs)

        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys; sys.argv=['virshle','node','ls'];\n"
             "from virshle_core.cli import main\n"
             "try: main()\nexcept SystemExit: pass\n"
             "heavy=[m for m in ('asyncssh','asyncio','sqlite_utils','loguru','importlib.metadata') if m in sys.modules]\n"
             "print(','.join(heavy) or 'none', file=sys.stderr)"],
            env=env, capture_output=True, text=True)
        heavy = probe.stderr.strip().splitlines()[-1]

        # idle: let the daemon settle, then read its RSS
        time.sleep(2)
        rss = psutil.Process(daemon.process.pid).memory_info().rss / 1024**2

        print(f"runs per figure           : {args.runs} (medians)")
        print(f"python -c pass            : {bare * 1000:7.1f} ms")
        print(f"virshle --help            : {helps * 1000:7.1f} ms  ({helps / bare:.2f}x bare)")
        print(f"virshle node ls           : {node_ls * 1000:7.1f} ms  ({node_ls / bare:.2f}x bare; target <= 5x)")
        print(f"heavy modules in node ls  : {heavy}  (asyncssh, asyncio, sqlite_utils must not appear)")
        print(f"daemon idle RSS           : {rss:7.1f} MB  (target <= 60 MB)")
    finally:
        daemon.close()
        shutil.rmtree(scratch, ignore_errors=True)
        remove_short_dirs()


if __name__ == "__main__":
    main()
