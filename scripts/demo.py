"""`make demo`: a node on a scratch root, a real guest on an OVS bridge with a Kea lease.

Everything runs inside a network namespace this script creates (OVS on its
userspace datapath, kea-dhcp4 on br0, the node daemon, the guest), and is
removed at the end, so the machine's own network is never touched.

`make demo-debian` (``--debian``) also boots a real Debian 12 cloud image
(UEFI, built by scripts/build-debian-image.sh) beside the busybox guest,
provisioned by cloud-init with a key made for the demo, and logs into it
with ssh: the seed's "Access your VM" with a real distribution. Its boot
takes a minute or two under software emulation.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing.netlab import Netns, bridge_with_dhcp, tear_down  # noqa: E402
from virshle_core.testing import (Daemon, network_config, remove_short_dirs, short_dir,  # noqa: E402
                           write_guest_config)

V = str(REPO / ".venv" / "bin" / "virshle")


def step(argv: list[str], env: dict, netns: str | None = None) -> str:
    shown = ["virshle" if a == V else a for a in argv]
    print(f"\n\033[1m$ {shlex.join(shown)}\033[0m", flush=True)
    prefix = ["ip", "netns", "exec", netns] if netns else []
    result = subprocess.run(prefix + argv, env=env, text=True, capture_output=True)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"demo: {shlex.join(shown)} failed (exit {result.returncode})")
    return result.stdout


def debian_template(base: Path) -> str:
    """A template of the real Debian image, with a key made for the demo."""
    image = subprocess.run([str(REPO / "scripts" / "build-debian-image.sh")], check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "demo_key")],
                   check=True)
    (base / "user-data").write_text("#cloud-config\nruncmd:\n  - [sh, -c, 'echo provisioned "
                                   "by virshle > /etc/motd']\n")
    return (f'\n[[template.vm]]\nname = "debian"\nvcpu = 2\nvram = "1GiB"\n'
            f'ssh_authorized_keys = ["{base / "demo_key.pub"}"]\nuser_data = "{base / "user-data"}"\n'
            f'[[template.vm.disk]]\nname = "os"\npath = "{image}"\n'
            f'[[template.vm.net]]\nname = "main"\n[template.vm.net.type.tap]\n')


def wait_ip(env: dict, name: str, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listing = subprocess.run([V, "vm", "info", "--name", name, "--json"], env=env,
                                 capture_output=True, text=True)
        ips = json.loads(listing.stdout or "{}").get("ips") or []
        if ips:
            return ips[0]
        time.sleep(0.5)
    return None


def boot_debian(env: dict, ns: Netns, base: Path) -> None:
    step([V, "vm", "create", "-t", "debian", "--name", "bookworm"], env)
    step([V, "vm", "start", "--name", "bookworm"], env)
    print("\n(waiting for Debian to boot, get its lease, and run cloud-init: a minute or two "
          "under software emulation ...)", flush=True)
    ip = wait_ip(env, "bookworm", 600)
    if ip is None:
        print("demo: the Debian guest got no lease in time", file=sys.stderr)
        return
    ssh = ["ssh", "-i", str(base / "demo_key"), "-o", "StrictHostKeyChecking=accept-new",
           "-o", f"UserKnownHostsFile={base / 'known_hosts'}", "-o", "ConnectTimeout=5",
           "-o", "BatchMode=yes", f"debian@{ip}"]
    deadline = time.monotonic() + 600
    while subprocess.run(["ip", "netns", "exec", ns.name, *ssh, "true"], capture_output=True
                         ).returncode != 0:
        if time.monotonic() > deadline:
            print("demo: ssh did not answer in time", file=sys.stderr)
            return
        time.sleep(3)
    step([V, "vm", "info", "--name", "bookworm"], env)
    step([*ssh, "hostname; cloud-init status --wait; cat /etc/motd; uname -r"], env, ns.name)
    step([V, "vm", "rm", "--force", "--name", "bookworm"], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debian", action="store_true",
                        help="also boot the real Debian 12 image, provisioned by cloud-init")
    args = parser.parse_args()
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(REPO / ".cache" / "guest")],
                   check=True)
    guest = REPO / ".cache" / "guest"
    ns = Netns(f"virshle-demo{os.getpid() % 10000}")
    parts: list = [ns]  # torn down last
    try:
        base = short_dir("demo")
        ovs, kea = bridge_with_dhcp(ns, base, "10.99.0.1/24", "10.99.0.100 - 10.99.0.199", parts)
        node_dir = short_dir("node")
        config = write_guest_config(node_dir, guest, "qemu", extra=network_config(ovs, kea) + (
            '\n[[template.vm.net]]\nname = "main"\n[template.vm.net.type.tap]\n')
            + (debian_template(base) if args.debian else ""), limits=False)
        print(f"\033[1mThe configuration ({config}):\033[0m\n{config.read_text()}")
        env = {**os.environ, "VIRSHLE_CONFIG": str(config), "COLUMNS": "120"}
        step([V, "node", "init", "--all"], env, ns.name)
        daemon = Daemon(node_dir, config, netns=ns.name, init_parts=("--all",))
        daemon.start()
        parts.append(daemon)
        print(f"\n(the node daemon runs in the namespace {ns.name}, pid {daemon.process.pid})")
        step([V, "node", "ls", "--all"], env)
        step([V, "template", "ls"], env)
        step([V, "plugins", "ls"], env)
        step(["curl", "-s", "--unix-socket", str(daemon.socket), "http://x/api/v1/node/ping"], env)
        print()
        step([V, "vm", "create", "-t", "tiny", "--name", "demo"], env)
        step([V, "vm", "start", "--name", "demo"], env)
        print("\n(waiting for the guest to boot and lease an address from Kea ...)", flush=True)
        ip = wait_ip(env, "demo", 120)
        step([V, "vm", "ls", "-v"], env)
        print("\n\033[1m$ virshle vm logs --name demo | head -2\033[0m")
        logs = subprocess.run([V, "vm", "logs", "--name", "demo"], env=env, capture_output=True,
                              text=True).stdout
        print("\n".join(logs.splitlines()[:2]))
        if ip:
            known_hosts = node_dir / "known_hosts"
            known_hosts.write_text(f"{ip} {(guest / 'host_key.pub').read_text()}")
            step(["ssh", "-i", str(guest / "id_ed25519"), "-o", "BatchMode=yes",
                  "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=30",
                  f"root@{ip}", "echo hello from $(hostname); uname -r"], env, ns.name)
        else:
            print("demo: the guest got no lease in time", file=sys.stderr)
        step([V, "vm", "stop", "--name", "demo"], env)
        step([V, "vm", "rm", "--name", "demo"], env)
        if args.debian:
            boot_debian(env, ns, base)
        print("\nDemo done: the daemon, Kea and OVS stop now; the namespace and scratch files go.")
    finally:
        tear_down(parts)
        remove_short_dirs()


if __name__ == "__main__":
    main()
