"""Real-guest figures (issue 9's targets).

    .venv/bin/python bench/guest.py [--runs N] [--no-boot]

(a) on the Debian 12 image (scripts/build-debian-image.sh), UEFI under this
    machine's accelerator: from `virshle vm start` to the Kea lease, and to
    ssh answering with the template's key;
(b) `vm create` with the cloud-init seed against without it (the cloudinit
    plugin disabled in the daemon; target <= 1.1x), medians of N creates;
(c) downloading a 256 MiB template image from a local HTTP server into the
    cache, against `curl` of the same file (target >= 0.9x).

Everything runs in a network namespace this script creates and removes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing.netlab import Netns, bridge_with_dhcp, run, tear_down  # noqa: E402
from virshle_core.testing import (Daemon, network_config, remove_short_dirs, short_dir,  # noqa: E402
                           write_config)


def api_create(daemon: Daemon, template: str) -> float:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.socket))
    body = json.dumps({"template": template}).encode()
    start = time.perf_counter()
    sock.sendall(b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Content-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    elapsed = time.perf_counter() - start
    sock.close()
    assert data.startswith(b"HTTP/1.1 201"), data[:300]
    return elapsed


def seed_cost(runs: int) -> None:
    """Creates on two nodes, one without the cloudinit plugin, interleaved so drift hits both."""
    nodes = []
    for env in (None, {"VIRSHLE_DISABLE_PLUGINS": "cloudinit"}):
        directory = short_dir("bs")
        node = Daemon(directory, write_config(directory))
        node.start(env=env)
        nodes.append(node)
    try:
        for node in nodes:
            api_create(node, "xs")  # the cache is warm from here on
        samples: list[list[float]] = [[], []]
        for _ in range(runs):
            for index, node in enumerate(nodes):
                samples[index].append(api_create(node, "xs"))
        with_seed, without = (statistics.median(s) for s in samples)
    finally:
        for node in nodes:
            node.stop()
    print(f"vm create, with the seed     : {with_seed * 1000:7.1f} ms (median of {runs})")
    print(f"vm create, without it        : {without * 1000:7.1f} ms")
    print(f"  ratio                      : {with_seed / without:7.2f}x  (target <= 1.1x)")


def download(ns: Netns, runs: int) -> None:
    served = short_dir("web")
    image = served / "image.raw"
    with open(image, "wb") as handle:
        block = os.urandom(4 * 1024 * 1024)
        for _ in range(64):
            handle.write(block)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    server = ns.popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                       served, "8130"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        url = "http://127.0.0.1:8130/image.raw"
        curl, durable, ours = [], [], []
        for index in range(runs):
            os.sync()  # each run starts with nothing left to write back from the one before
            start = time.perf_counter()
            ns.exec(["curl", "-s", "-o", served / "curl.out", url])
            curl.append(time.perf_counter() - start)
            (served / "curl.out").unlink()
            os.sync()
            start = time.perf_counter()  # the same, made as durable as the cache's copy
            ns.exec(["sh", "-c", f'curl -s -o {served / "curl.out"} {url} && sync {served / "curl.out"}'])
            durable.append(time.perf_counter() - start)
            (served / "curl.out").unlink()
            directory = short_dir("dl")
            config = write_config(directory)
            config.write_text(config.read_text() + f'\n[[template.vm]]\nname = "web"\n'
                              f'[[template.vm.disk]]\nname = "os"\npath = "{url}"\n'
                              f'sha256 = "{digest}"\n')
            node = Daemon(directory, config, netns=ns.name)
            node.start()
            try:
                api_create(node, "xs")  # a first create pays the daemon's imports: not ours to time
                os.sync()
                ours.append(api_create(node, "web"))  # the download, then a qcow2 overlay
            finally:
                node.stop()
                # free its pages as curl's output was freed: on a VM, memory the guest touches
                # for the first time is slow to fault in, and would count against one side only
                shutil.rmtree(node.root, ignore_errors=True)
        size = image.stat().st_size / 1024**2
        c, d, o = statistics.median(curl), statistics.median(durable), statistics.median(ours)
        print(f"download 256 MiB, curl       : {c:7.2f} s ({size / c:6.0f} MiB/s)")
        print(f"  curl, then sync the file   : {d:7.2f} s ({size / d:6.0f} MiB/s)")
        print(f"download 256 MiB, vm create  : {o:7.2f} s ({size / o:6.0f} MiB/s: checked, "
              "synced, then an overlay)")
        print(f"  throughput ratio           : {d / o:7.2f}x of curl+sync (target >= 0.9x), "
              f"{c / o:.2f}x of curl alone")
    finally:
        server.kill()
        server.wait()


def boot(ns: Netns, ovs, kea) -> None:
    image = Path(subprocess.run([str(REPO / "scripts" / "build-debian-image.sh")], check=True,
                                capture_output=True, text=True).stdout.strip().splitlines()[-1])
    base = short_dir("key")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", base / "id"])
    directory = short_dir("bootn")
    config = directory / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        [host]
        root = "{short_dir()}"
        hypervisor = "qemu"
        {network_config(ovs, kea)}
        [[template.vm]]
        name = "debian"
        vcpu = 2
        vram = "1GiB"
        ssh_authorized_keys = ["{base / 'id.pub'}"]
        [[template.vm.disk]]
        name = "os"
        path = "{image}"
        [[template.vm.net]]
        name = "main"
        [template.vm.net.type.tap]
        """))
    node = Daemon(directory, config, netns=ns.name, init_parts=("--all",))
    node.start()
    try:
        assert node.cli("vm", "create", "-t", "debian", "--name", "bench").returncode == 0
        start = time.perf_counter()
        assert node.cli("vm", "start", "--name", "bench").returncode == 0
        ip, leased = None, None
        while time.perf_counter() - start < 600:
            if ip is None:
                ips = node.cli("vm", "info", "--name", "bench", "--json").json()["ips"]
                if ips:
                    ip, leased = ips[0], time.perf_counter() - start
            elif ns.exec(["ssh", "-i", base / "id", "-o", "StrictHostKeyChecking=no",
                          "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3",
                          "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"debian@{ip}", "true"],
                         check=False).returncode == 0:
                print(f"vm start -> the Kea lease    : {leased:7.1f} s (Debian 12, UEFI, 2 vcpu)")
                print(f"vm start -> ssh answers      : {time.perf_counter() - start:7.1f} s")
                return
            time.sleep(1)
        print("the guest did not answer ssh within 600 s")
    finally:
        node.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--no-boot", action="store_true", help="skip the Debian boot")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "virshle_core"),
                    str(REPO / "plugins")], stdout=subprocess.DEVNULL)
    ns = Netns(f"vbguest{os.getpid() % 10000}")
    parts: list = [ns]  # torn down last
    try:
        seed_cost(args.runs)
        download(ns, max(3, args.runs // 3))
        if not args.no_boot:
            ovs, kea = bridge_with_dhcp(ns, short_dir("bb"), "10.33.0.1/24", "10.33.0.100 - 10.33.0.199",
                                        parts)
            boot(ns, ovs, kea)
    finally:
        tear_down(parts)
        remove_short_dirs()


if __name__ == "__main__":
    if not shutil.which("qemu-system-x86_64"):
        sys.exit("bench/guest.py needs qemu-system-x86_64 (make setup installs it)")
    main()
