"""Scale figures (issue 10): listings, stops and creates as a node fills up.

    .venv/bin/python bench/scale.py [--runs N] [--sizes 10,100,1000]

As users install Virshle (bench/installed.py). For 10, 100 and 1,000
defined VMs: `vm ls` and `vm ls --json` (the whole command), `GET /vms`
inside the daemon (one request on its socket), and the daemon's RSS; then,
with 16 and 32 running guests (the test guest, booting: busy), the listing
and a concurrent `vm stop --force` of all of them; and 64 concurrent
creates. Target: listing 1,000 VMs within 1.5x of listing 10, and
`--json` no slower than the table.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import installed  # noqa: E402
from virshle_core import testing  # noqa: E402
from virshle_core.testing import Daemon, remove_short_dirs, short_dir, write_guest_config  # noqa: E402


def request(node: Daemon, method: str, path: str, body: dict | None = None) -> tuple[float, bytes]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(node.socket))
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} /api/v1{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    start = time.perf_counter()
    sock.sendall(head.encode() + b"\r\n" + payload)
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    elapsed = time.perf_counter() - start
    sock.close()
    return elapsed, data


def timed(argv: list[str], env: dict, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    testing.VIRSHLE = virshle = str(installed.install() / "virshle")
    guest = REPO / ".cache" / "guest"
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(guest)], check=True)
    directory = short_dir("scale")
    config = write_guest_config(directory, guest, "qemu")
    config.write_text(config.read_text() + '\n[[template.vm]]\nname = "bare"\nvram = "64MiB"\n')
    node = Daemon(directory, config)
    node.start()
    env = {**os.environ, "VIRSHLE_CONFIG": str(config)}
    v = [virshle]
    try:
        subprocess.run(v + ["vm", "ls"], env=env, stdout=subprocess.DEVNULL, check=True)
        print(f"{'defined':>8} {'vm ls':>9} {'--json':>9} {'GET /vms':>9} {'RSS':>9}")
        listing = {}
        defined = 0
        for size in sizes:
            while defined < size:
                batch = min(1000, size - defined)
                elapsed, data = request(node, "POST", "/vms", {"template": "bare", "count": batch})
                assert b" 201 " in data.split(b"\r\n", 1)[0], data[:300]
                defined += batch
            table = timed(v + ["vm", "ls"], env, args.runs)
            as_json = timed(v + ["vm", "ls", "--json"], env, args.runs)
            inside = statistics.median(request(node, "GET", "/vms")[0] for _ in range(args.runs))
            rss = psutil.Process(node.pid).memory_info().rss / 1024**2
            listing[size] = table
            print(f"{size:>8} {table * 1000:7.1f}ms {as_json * 1000:7.1f}ms {inside * 1000:7.1f}ms "
                  f"{rss:7.1f}MiB")
        small, large = listing[sizes[0]], listing[sizes[-1]]
        print(f"listing {sizes[-1]} against {sizes[0]}: {large / small:.2f}x (target <= 1.5x)")
        request(node, "DELETE", "/vms/name:nothing")  # warm
        for running in (16, 32):
            names = [f"r{running}-{i}" for i in range(1, running + 1)]
            request(node, "POST", "/vms", {"template": "tiny", "count": running,
                                           "name": f"r{running}"})
            for name in names:
                request(node, "POST", f"/vms/name:{name}/start", {})
            table = timed(v + ["vm", "ls"], env, args.runs)
            rss = psutil.Process(node.pid).memory_info().rss / 1024**2
            failed = []

            def stop(name: str) -> None:
                _, data = request(node, "POST", f"/vms/name:{name}/stop", {"force": True})
                if b" 200 " not in data.split(b"\r\n", 1)[0]:
                    failed.append(name)

            start = time.perf_counter()
            threads = [threading.Thread(target=stop, args=(name,)) for name in names]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            stopped = time.perf_counter() - start
            print(f"{running} running busy guests: vm ls {table * 1000:.1f}ms, RSS {rss:.1f}MiB, "
                  f"{running} concurrent force-stops {stopped * 1000:.0f}ms"
                  + (f" ({len(failed)} FAILED)" if failed else ""))
            for name in names:
                request(node, "DELETE", f"/vms/name:{name}")
        results: list[float] = []

        def create(index: int) -> None:
            results.append(request(node, "POST", "/vms", {"template": "bare",
                                                          "name": f"burst-{index}"})[0])

        start = time.perf_counter()
        threads = [threading.Thread(target=create, args=(i,)) for i in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"64 concurrent creates: {(time.perf_counter() - start) * 1000:.0f}ms in all, "
              f"median {statistics.median(results) * 1000:.1f}ms each")
    finally:
        node.close()
        remove_short_dirs()


if __name__ == "__main__":
    main()
