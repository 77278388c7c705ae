"""VM figures (issue 3's targets).

    .venv/bin/python bench/vm.py [--runs N]

(a) `vm create` from a 1 GiB and a 4 GiB template once the cache is warm,
    against a plain `cp` of the 1 GiB image (targets: the two within 1.2x
    of each other, each under 5% of the cp);
(b) from `virshle vm start` to the guest's marker in its console log,
    against launching the same QEMU command line by hand (target <= 1.10x).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing import MARKER, VIRSHLE, Daemon, remove_short_dirs, write_guest_config  # noqa: E402


def make_image(path: Path, size: int) -> None:
    block = os.urandom(4 * 1024 * 1024)
    with open(path, "wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)


def api_create(daemon: Daemon, template: str) -> tuple[float, str]:
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
    assert data.startswith(b"HTTP/1.1 201"), data[:200]
    return elapsed, json.loads(data.split(b"\r\n\r\n", 1)[1])[0]["uuid"]


def wait_marker(log: Path, timeout: float = 120) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if MARKER.encode() in log.read_bytes():
                return time.perf_counter()
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"no marker in {log}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vbench-", dir="/tmp"))
    guest = REPO / ".cache" / "guest"
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(guest)], check=True)
    extra = "".join(
        f'\n[[template.vm]]\nname = "t{gib}g"\nvcpu = 1\nvram = "256MiB"\nkernel = "{guest}/vmlinuz"\n'
        f'[[template.vm.disk]]\nname = "os"\npath = "{work}/{gib}g.img"\n' for gib in (1, 4))
    daemon = Daemon(work, write_guest_config(work, guest, "qemu", extra=extra))
    try:
        print("writing 1 GiB and 4 GiB template images ...", flush=True)
        make_image(work / "1g.img", 1024**3)
        make_image(work / "4g.img", 4 * 1024**3)
        daemon.start()

        # (a) warm the cache, then time creates
        for template in ("t1g", "t4g"):
            _, uuid = api_create(daemon, template)
            daemon.cli("vm", "rm", "--uuid", uuid)
        times = {"t1g": [], "t4g": [], "cli": []}
        for _ in range(args.runs):
            for template in ("t1g", "t4g"):
                elapsed, uuid = api_create(daemon, template)
                times[template].append(elapsed)
                daemon.cli("vm", "rm", "--uuid", uuid)
            start = time.perf_counter()
            created = daemon.cli("vm", "create", "-t", "t1g", "--json")
            times["cli"].append(time.perf_counter() - start)
            daemon.cli("vm", "rm", "--uuid", created.json()[0]["uuid"])
        cps = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(["cp", str(work / "1g.img"), str(work / "copy.img")], check=True)
            cps.append(time.perf_counter() - start)
            (work / "copy.img").unlink()
        one, four, cli, cp = (statistics.median(times["t1g"]), statistics.median(times["t4g"]),
                              statistics.median(times["cli"]), statistics.median(cps))
        print(f"(a) vm create, warm cache, 1 GiB template : {one * 1000:7.1f} ms (API request)")
        print(f"    vm create, warm cache, 4 GiB template : {four * 1000:7.1f} ms ({four / one:.2f}x the 1 GiB; target <= 1.2x)")
        print(f"    cp of the 1 GiB image                 : {cp * 1000:7.1f} ms")
        print(f"    create / cp                           : {one / cp * 100:5.1f}% and {four / cp * 100:.1f}% (target < 5%)")
        print(f"    whole `virshle vm create` (CLI start included): {cli * 1000:.1f} ms")

        # (b) start to marker, through virshle and by hand
        from virshle_core.models import Disk, Vm
        from virshle_qemu import QemuConfig, choose_accel
        from virshle_qemu.vmm import build_argv

        created = daemon.cli("vm", "create", "-t", "tiny", "--name", "bench", "--json").json()[0]
        virshle_times, hand_times = [], []
        for run in range(args.runs):
            log = daemon.root / "vm" / created["uuid"] / "console.log"
            log.unlink(missing_ok=True)
            start = time.perf_counter()
            subprocess.run([VIRSHLE, "vm", "start", "--name", "bench"], check=True,
                           env={**os.environ, "VIRSHLE_CONFIG": str(daemon.config)},
                           stdout=subprocess.DEVNULL)
            virshle_times.append(wait_marker(log) - start)
            daemon.cli("vm", "stop", "--name", "bench", "--force")

            hand = work / f"hand{run}"
            hand.mkdir()
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                            str(work / "template-disk.raw"), str(hand / "os")], check=True)
            vm = Vm(id=1, uuid=f"00000000-0000-4000-8000-{run:012d}", name=f"hand{run}",
                    node="x", template="tiny", vcpu=1, vram=256 * 1024**2, dir=str(hand),
                    kernel=str(guest / "vmlinuz"), initramfs=str(guest / "initramfs.gz"),
                    cmdline="console=ttyS0 quiet panic=-1",
                    disks=[Disk(name="os", path=str(hand / "os"), format="qcow2")])
            argv = build_argv(vm, [], QemuConfig(), shutil.which("qemu-system-x86_64"),
                              choose_accel(QemuConfig()))
            start = time.perf_counter()
            subprocess.run(argv, check=True)
            hand_times.append(wait_marker(hand / "console.log") - start)
            os.kill(int((hand / "vmm.pid").read_text()), signal.SIGKILL)
        via, by_hand = statistics.median(virshle_times), statistics.median(hand_times)
        print(f"(b) virshle vm start -> marker            : {via:6.2f} s")
        print(f"    same QEMU command line by hand -> marker: {by_hand:6.2f} s ({via / by_hand:.2f}x; target <= 1.10x)")
        daemon.cli("vm", "rm", "--name", "bench", "--force")
    finally:
        daemon.stop()
        daemon.kill_vmms()
        shutil.rmtree(work, ignore_errors=True)
        remove_short_dirs()


if __name__ == "__main__":
    main()
