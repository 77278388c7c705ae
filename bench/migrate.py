"""Moving VMs between two nodes of this machine (issue 22's targets).

    .venv/bin/python bench/migrate.py [--runs N] [--size-mib M]

- live: `vm migrate --live` of the test guest (256 MiB, one disk) between two local
  nodes, its total time and the downtime QEMU measured, beside a raw QEMU-to-QEMU
  migration of the same guest over unix sockets on this machine (the floor: the same
  mirror to an NBD export, then the memory, with no Virshle between). Target: total at
  most 1.3x the floor + 1 s, downtime within 1.5x of QEMU's own.
- cold: `vm migrate` of a stopped VM whose overlay holds M MiB (1024 by default),
  against `cat` of the same file through `ssh` to localhost (sshd in a namespace of
  the bench's own). Target: at least 0.8x its throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing import (  # noqa: E402
    Daemon, nodes_config, remove_short_dirs, run_cli, wait_for, write_guest_config)
from virshle_core.testing.netlab import Netns, tear_down  # noqa: E402
from virshle_core.testing.sshlab import Sshd  # noqa: E402

GUEST = REPO / ".cache" / "guest"


def cli(config: Path, *args: str, timeout: float = 600):
    result = run_cli(*args, config=config, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"virshle {' '.join(args)} failed: {result.stderr}")
    return result


def booted(config: Path, name: str) -> None:
    wait_for(lambda: "VIRSHLE-GUEST-READY" in run_cli("vm", "logs", "--name", name,
                                                      config=config).stdout,
             timeout=120, what=f"VM {name} to boot")


def live_virshle(config: Path, runs: int) -> list[dict]:
    figures = []
    cli(config, "vm", "create", "-t", "tiny", "--name", "live", "--node", "a")
    cli(config, "vm", "start", "--name", "live")
    booted(config, "live")
    for run in range(runs):
        to = "b" if run % 2 == 0 else "a"
        started = time.monotonic()
        result = cli(config, "vm", "migrate", "live", "--to", to, "--live", "--json").json()
        wall = time.monotonic() - started
        figures.append({"wall_s": wall, "total_ms": result["figures"]["total_ms"],
                        "downtime_ms": result["figures"]["downtime_ms"]})
        time.sleep(1)
    cli(config, "vm", "rm", "--name", "live", "--force", "--yes")
    return figures


def qemu(directory: Path, name: str, disk: Path, extra: list[str]) -> Path:
    qmp = directory / f"{name}.qmp"
    subprocess.run([
        "qemu-system-x86_64", "-name", name, "-machine", "q35", "-accel", "tcg", "-cpu", "max",
        "-m", "256M", "-nodefaults", "-display", "none", "-no-shutdown",
        "-chardev", f"socket,id=serial0,path={directory / name}.con,server=on,wait=off,"
                    f"logfile={directory / name}.log",
        "-serial", "chardev:serial0", "-qmp", f"unix:{qmp},server=on,wait=off",
        "-kernel", str(GUEST / "vmlinuz"), "-initrd", str(GUEST / "initramfs.gz"),
        "-append", "console=ttyS0 quiet panic=-1",
        "-drive", f"file={disk},if=virtio,format=qcow2,index=0",
        "-pidfile", str(directory / f"{name}.pid"), "-daemonize", *extra], check=True)
    return qmp


def monitor(path: Path):
    from qemu.qmp.legacy import QEMUMonitorProtocol

    client = QEMUMonitorProtocol(str(path))
    client.connect()
    return client


def live_floor(runs: int) -> list[dict]:
    """QEMU to QEMU, as the qemu plugin drives it, with nothing between the two."""
    figures = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="vmig-") as scratch:
            directory = Path(scratch)
            base = directory / "base.raw"
            base.write_bytes((GUEST / "disk.raw").read_bytes())
            for name in ("src", "dst"):
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                str(base), str(directory / f"{name}.qcow2")], check=True)
            src = monitor(qemu(directory, "src", directory / "src.qcow2", []))
            wait_for(lambda: "VIRSHLE-GUEST-READY" in (directory / "src.log").read_text(
                errors="replace") if (directory / "src.log").exists() else False, timeout=120)
            dst = monitor(qemu(directory, "dst", directory / "dst.qcow2",
                               ["-incoming", "defer", "-S"]))
            try:
                node = dst.cmd("query-block")[0]["inserted"]["node-name"]
                dst.cmd("nbd-server-start", addr={"type": "unix",
                                                  "data": {"path": str(directory / "nbd.sock")}})
                dst.cmd("block-export-add", type="nbd", id="e", **{"node-name": node},
                        name="os", writable=True)
                dst.cmd("migrate-incoming", uri=f"unix:{directory / 'mem.sock'}")
                device = src.cmd("query-block")[0]["device"]
                started = time.monotonic()
                src.cmd("blockdev-add", driver="nbd", **{"node-name": "m"}, export="os",
                        server={"type": "unix", "path": str(directory / "nbd.sock")})
                src.cmd("blockdev-mirror", **{"job-id": "j"}, device=device, target="m",
                        sync="top")
                while not all(job["ready"] for job in src.cmd("query-block-jobs")):
                    time.sleep(0.05)
                src.cmd("migrate-set-capabilities", capabilities=[
                    {"capability": "pause-before-switchover", "state": True},
                    {"capability": "auto-converge", "state": True}])
                src.cmd("migrate", uri=f"unix:{directory / 'mem.sock'}")
                while src.cmd("query-migrate")["status"] != "pre-switchover":
                    time.sleep(0.05)
                src.cmd("block-job-cancel", device="j")
                while src.cmd("query-block-jobs"):
                    time.sleep(0.02)
                src.cmd("migrate-continue", state="pre-switchover")
                while (status := src.cmd("query-migrate"))["status"] != "completed":
                    time.sleep(0.05)
                dst.cmd("nbd-server-stop")
                dst.cmd("cont")
                wall = time.monotonic() - started
                figures.append({"wall_s": wall, "total_ms": status.get("total-time"),
                                "downtime_ms": status.get("downtime")})
            finally:
                for client in (src, dst):
                    try:
                        client.cmd("quit")
                        client.close()
                    except Exception:
                        pass  # "quit" closed the socket under us
                for name in ("src", "dst"):  # whatever did not quit, by its recorded pid
                    pid = (directory / f"{name}.pid")
                    if pid.exists() and Path(f"/proc/{pid.read_text().strip()}").exists():
                        os.kill(int(pid.read_text()), 9)
                time.sleep(0.5)
    return figures


def cold_virshle(config: Path, daemons: dict, size_mib: int, runs: int) -> tuple[list[float], int]:
    cli(config, "vm", "create", "-t", "tiny", "--name", "cold", "--node", "a")
    cli(config, "vm", "disk", "resize", "cold", "os", f"{size_mib + 64}M")
    disk = cli(config, "vm", "info", "--name", "cold", "--json").json()["disks"][0]["path"]
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {size_mib}M", disk],
                   check=True, stdout=subprocess.DEVNULL)
    seconds = []
    for run in range(runs):
        to = "b" if run % 2 == 0 else "a"
        started = time.monotonic()
        cli(config, "vm", "migrate", "cold", "--to", to)
        seconds.append(time.monotonic() - started)
    disk = cli(config, "vm", "info", "--name", "cold", "--json").json()["disks"][0]["path"]
    size = os.path.getsize(disk)
    cli(config, "vm", "rm", "--name", "cold", "--yes")
    return seconds, size


def cold_floor(directory: Path, size_mib: int, runs: int) -> tuple[list[float], int]:
    """``cat FILE | ssh root@127.0.0.1 'cat > COPY'`` of a file as big as the overlay."""
    source = directory / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(source), f"{size_mib + 64}M"],
                   check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {size_mib}M", str(source)],
                   check=True, stdout=subprocess.DEVNULL)
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ns = Netns(f"vmig{os.getpid() % 10000}")
    sshd = None
    try:
        ns.exec(["ip", "link", "set", "lo", "up"])
        sshd = Sshd(ns, directory / "sshd", "127.0.0.1", key.with_suffix(".pub"))
        seconds = []
        for _ in range(runs):
            started = time.monotonic()
            ns.exec(["sh", "-c", f"cat {source} | ssh -i {key} -o StrictHostKeyChecking=no "
                                 f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
                                 f"root@127.0.0.1 'cat > {directory / 'copy'}'"])
            seconds.append(time.monotonic() - started)
        return seconds, source.stat().st_size
    finally:
        tear_down([sshd, ns])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(GUEST)], check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as scratch:
        base = Path(scratch)
        daemons = {}
        try:
            for name in ("a", "b"):
                (base / name).mkdir()
                daemons[name] = Daemon(base / name, write_guest_config(base / name, GUEST)).start()
            config = nodes_config(base / "cli.toml", daemons)
            live = live_virshle(config, args.runs)
            floor = live_floor(args.runs)
            cold, cold_size = cold_virshle(config, daemons, args.size_mib, args.runs)
        finally:
            for daemon in daemons.values():
                daemon.close()
        ssh, ssh_size = cold_floor(base, args.size_mib, args.runs)
    remove_short_dirs()

    def median(rows: list[dict], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    live_total, floor_total = median(live, "wall_s"), median(floor, "wall_s")
    live_down, floor_down = median(live, "downtime_ms"), median(floor, "downtime_ms")
    cold_rate = cold_size / statistics.median(cold) / 2**20
    ssh_rate = ssh_size / statistics.median(ssh) / 2**20
    print(json.dumps({"live": live, "floor": floor, "cold_s": cold, "ssh_s": ssh}, indent=1))
    print(f"live migration, test guest (256 MiB, one disk), median of {args.runs}:")
    print(f"  virshle vm migrate --live: {live_total:.2f} s in all, downtime {live_down:.0f} ms")
    print(f"  raw QEMU to QEMU (floor): {floor_total:.2f} s, downtime {floor_down:.0f} ms")
    print(f"  total {live_total:.2f} s vs target {1.3 * floor_total + 1:.2f} s "
          f"(1.3x floor + 1 s): {'met' if live_total <= 1.3 * floor_total + 1 else 'MISSED'}")
    print(f"  downtime {live_down / max(floor_down, 1):.2f}x QEMU's own (target 1.5x): "
          f"{'met' if live_down <= 1.5 * floor_down else 'MISSED'}")
    print(f"cold migration of a {cold_size / 2**20:.0f} MiB overlay:")
    print(f"  virshle vm migrate: {cold_rate:.0f} MiB/s; cat | ssh localhost: {ssh_rate:.0f} MiB/s"
          f" ({cold_rate / ssh_rate:.2f}x, target 0.8x: "
          f"{'met' if cold_rate >= 0.8 * ssh_rate else 'MISSED'})")


if __name__ == "__main__":
    main()
