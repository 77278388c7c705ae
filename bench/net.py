"""Network figures (issue 4's targets), in a namespace lab of real OVS and Kea.

    .venv/bin/python bench/net.py [--runs N]

- `vm ls -v` against `vm ls` with 100 VMs and 100 leases in Kea (target
  <= 1.3x: one lease query per listing, never one per VM);
- from `virshle vm start` to the lease being visible in `vm info`, against
  the moment the guest itself says on its console that it got the lease.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing.netlab import Netns, bridge_with_dhcp, tear_down  # noqa: E402
from virshle_core.testing import (VIRSHLE, Daemon, network_config, remove_short_dirs, short_dir,  # noqa: E402
                           write_guest_config)


def timed(argv, env, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    guest = REPO / ".cache" / "guest"
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(guest)], check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "virshle_core"),
                    str(REPO / "plugins")], stdout=subprocess.DEVNULL)
    ns = Netns(f"vbench{os.getpid() % 10000}")
    parts: list = [ns]  # torn down last
    try:
        base = short_dir("bench")
        ovs, kea = bridge_with_dhcp(ns, base, "10.66.0.1/23", "10.66.0.10 - 10.66.1.250", parts)
        node_dir = short_dir("node")
        config = write_guest_config(node_dir, guest, "qemu", extra=network_config(ovs, kea) + (
            '[[template.vm.net]]\nname = "main"\n[template.vm.net.type.tap]\n'))
        daemon = Daemon(node_dir, config, netns=ns.name, init_parts=("--all",))
        daemon.start()
        parts.append(daemon)
        env = {**os.environ, "VIRSHLE_CONFIG": str(config)}

        created = daemon.cli("vm", "create", "-t", "tiny", "-n", "100", "--name", "many", "--json")
        vms = created.json()
        for index, vm in enumerate(vms):
            ip = f"10.66.{index // 200}.{10 + index % 200}"
            kea.command("lease4-add", {"ip-address": ip, "hw-address": vm["nets"][0]["mac"],
                                       "subnet-id": 1})
        assert len(kea.leases()) == 100
        listed = daemon.cli("vm", "ls", "-v", "--json").json()
        assert sum(1 for vm in listed if vm["ips"]) == 100
        plain = timed([VIRSHLE, "vm", "ls"], env, args.runs)
        verbose = timed([VIRSHLE, "vm", "ls", "-v"], env, args.runs)
        print(f"vm ls    (100 VMs, 100 leases)  : {plain * 1000:7.1f} ms")
        print(f"vm ls -v (100 VMs, 100 leases)  : {verbose * 1000:7.1f} ms ({verbose / plain:.2f}x; target <= 1.3x)")
        for vm in vms:
            daemon.cli("vm", "rm", "--uuid", vm["uuid"])

        to_lease, to_console = [], []
        for run in range(max(2, args.runs // 3)):
            name = f"lease{run}"
            daemon.cli("vm", "create", "-t", "tiny", "--name", name)
            log = None
            start = time.perf_counter()
            subprocess.run([VIRSHLE, "vm", "start", "--name", name], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            uuid = daemon.cli("vm", "info", "--name", name, "--json").json()["uuid"]
            log = daemon.root / "vm" / uuid / "console.log"
            console_at = lease_at = None
            while (console_at is None or lease_at is None) and time.perf_counter() - start < 120:
                if console_at is None and log.exists() and b"virshle-guest: lease" in log.read_bytes():
                    console_at = time.perf_counter() - start
                if lease_at is None:
                    info = json.loads(subprocess.run([VIRSHLE, "vm", "info", "--name", name, "--json"],
                                                     env=env, capture_output=True, text=True).stdout)
                    if info["ips"]:
                        lease_at = time.perf_counter() - start
                time.sleep(0.05)
            to_lease.append(lease_at)
            to_console.append(console_at)
            daemon.cli("vm", "rm", "--force", "--name", name)
        print(f"vm start -> guest says it has its lease (console) : {statistics.median(to_console):6.2f} s")
        print(f"vm start -> lease visible in `vm info`            : {statistics.median(to_lease):6.2f} s")
    finally:
        tear_down(parts)
        remove_short_dirs()


if __name__ == "__main__":
    main()
