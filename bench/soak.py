"""A seeded soak: two nodes through a random mix of operations and faults, the node's
invariants checked after every fault and restart (issue 20).

    .venv/bin/python bench/soak.py [--steps 200] [--seed S]

The nodes run the test guest (QEMU, TCG); node B's root is a small tmpfs, so that its
disk can fill up. Operations: create, start, stop, pause, resume, snapshots (with and
without memory), restore, clone, disk and memory resize, rm, node reload. Faults: kill -9
of a daemon, of a QEMU, of a qemu-img (with its daemon, as a power loss would), of a CLI
in flight; SIGSTOP of a daemon for a few seconds; a full disk.

After each fault (and every tenth step) it checks, on both nodes:
- no journal entry is left, and rows = VM directories = running QEMUs;
- snapshot rows = the snapshots each qcow2 disk holds (`qemu-img info`);
- disk sizes in the store = `qemu-img info`; reservations = the sum over the rows;
- `qemu-img check` is clean on stopped VMs' disks;
- no zombie child, no QEMU without a row, no traceback in a daemon's log.

The first broken invariant is printed with the seed and step to replay it (exit 1). At
the end: the steps, the faults, and each daemon's peak resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing import (VIRSHLE, Daemon, alive, qemus_of, remove_short_dirs, short_dir,  # noqa: E402
                                  wait_for, write_guest_config)

OPERATIONS = ["create", "start", "start", "stop", "pause", "resume", "snapshot", "snapshot-memory",
              "restore", "snapshot-rm", "clone", "disk-resize", "vram", "rm", "reload"]
FAULTS = ["kill-daemon", "kill-qemu", "kill-qemu-img", "kill-cli", "sigstop", "full-disk"]


class Broken(Exception):
    """An invariant that does not hold."""


class Node:
    def __init__(self, name: str, guest: Path, tmpfs_mib: int | None):
        self.name = name
        directory = short_dir(f"soak{name}")
        self.mount = None
        config = write_guest_config(directory, guest, "qemu")
        text = config.read_text().replace("stop_timeout = 20", "stop_timeout = 3")
        text = text.replace('vram = "256MiB"', 'vram = "128MiB"')
        if tmpfs_mib:
            self.mount = directory / "root"
            self.mount.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={tmpfs_mib}m", "tmpfs",
                            str(self.mount)], check=True)
            old_root = text.split('root = "', 1)[1].split('"', 1)[0]
            text = text.replace(old_root, str(self.mount / "n"), 1)
        config.write_text(text)
        self.daemon = Daemon(directory, config, reaped=True)
        self.daemon.start()
        self.peak_rss = 0
        self.filler: Path | None = None

    @property
    def root(self) -> Path:
        return self.daemon.root

    def cli(self, *args: str, timeout: float = 120):
        return self.daemon.cli(*args, timeout=timeout)

    def rows(self) -> list[dict]:
        conn = sqlite3.connect(f"file:{self.root / 'virshle.sqlite'}?mode=ro", uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in conn.execute("SELECT * FROM vms")]
        finally:
            conn.close()

    def snapshot_rows(self) -> dict[int, set[str]]:
        return {vm_id: set(names) for vm_id, names in self._snapshots()[0].items()}

    def _snapshots(self) -> tuple[dict[int, list[str]], int]:
        """Each VM's snapshot names, and what they reserve in all."""
        conn = sqlite3.connect(f"file:{self.root / 'virshle.sqlite'}?mode=ro", uri=True, timeout=30)
        try:
            found: dict[int, list[str]] = {}
            total = 0
            for vm_id, name, size in conn.execute("SELECT vm_id, name, size FROM snapshots"):
                found.setdefault(vm_id, []).append(name)
                total += size
            return found, total
        finally:
            conn.close()

    def vms(self, *states: str) -> list[dict]:
        return [row for row in self.rows() if row["pending"] is None
                and (not states or row["state"] in states)]

    def restart(self) -> None:
        if self.daemon.process is not None and alive(self.daemon.pid):
            self.daemon.kill9()
        self.daemon.process = None
        self.daemon.init_parts = ()
        self.daemon.start()

    def sample_rss(self) -> None:
        try:
            for line in Path(f"/proc/{self.daemon.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
        except OSError:
            pass

    def close(self) -> None:
        self.daemon.close()
        if self.mount is not None:
            subprocess.run(["umount", "-l", str(self.mount)], check=False)


def qemu_img_info(path: str) -> dict:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise Broken(f"qemu-img info {path}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def check(node: Node, where: str) -> None:
    """Every invariant of one node; Broken names the first that fails."""
    def settled() -> bool:
        rows = node.rows()
        running = {r["uuid"] for r in rows if r["state"] in ("running", "paused")}
        return not [r for r in rows if r["pending"]] and set(qemus_of(node.root)) == running

    try:
        wait_for(settled, timeout=20, every=0.25, what="the node to settle")
    except AssertionError:
        pass  # the checks below say what is wrong
    rows = node.rows()
    pending = [(r["name"], r["pending"]) for r in rows if r["pending"]]
    if pending:
        raise Broken(f"{node.name} {where}: journal entries left: {pending}")
    uuids = {r["uuid"] for r in rows}
    dirs = {p.name for p in (node.root / "vm").iterdir()}
    if dirs != uuids:
        raise Broken(f"{node.name} {where}: directories {sorted(dirs - uuids)} have no row, "
                     f"rows {sorted(uuids - dirs)} no directory")
    running = {r["uuid"] for r in rows if r["state"] in ("running", "paused")}
    processes = qemus_of(node.root)
    if set(processes) != running:
        raise Broken(f"{node.name} {where}: QEMUs {sorted(processes)} for running rows {sorted(running)}")
    snapshot_rows = node.snapshot_rows()
    vcpu = vram = disk_total = 0
    for row in rows:
        disks = json.loads(row["disks"] or "[]")
        if row["uuid"] in running:  # [host.limits] reserve = "running", the default
            vcpu, vram = vcpu + row["vcpu"], vram + row["vram"]
        held_names: set[str] | None = None
        for disk in disks:
            disk_total += disk.get("size") or 0
            if disk.get("readonly"):
                continue
            info = qemu_img_info(disk["path"])
            if info.get("format") != disk.get("format"):
                raise Broken(f"{node.name} {where}: VM {row['name']} disk {disk['name']} is "
                             f"{info.get('format')}, the store says {disk.get('format')}")
            if info.get("virtual-size") != disk.get("size"):
                raise Broken(f"{node.name} {where}: VM {row['name']} disk {disk['name']} is "
                             f"{info.get('virtual-size')} bytes, the store says {disk.get('size')}")
            names = {held["name"] for held in info.get("snapshots") or []}
            held_names = names if held_names is None else held_names & names
            if row["uuid"] not in running and info.get("format") == "qcow2":
                checked = subprocess.run(["qemu-img", "check", "-q", disk["path"]], capture_output=True,
                                         text=True)
                if checked.returncode != 0:
                    raise Broken(f"{node.name} {where}: qemu-img check of VM {row['name']} disk "
                                 f"{disk['name']}: exit {checked.returncode} {checked.stdout.strip()}")
        recorded = snapshot_rows.get(row["id"], set())
        if held_names is not None and recorded != held_names:
            raise Broken(f"{node.name} {where}: VM {row['name']} snapshot rows {sorted(recorded)}, "
                         f"its disks hold {sorted(held_names)}")
    info = node.cli("node", "ls", "--all", "--json").json()[0]
    if info["cpu"]["reserved"] != vcpu or info["ram"]["reserved"] != vram:
        # a stop the killed command began may end between the rows and the figures: the
        # figures must then match the rows read after them
        later = [r for r in node.rows() if r["state"] in ("running", "paused")]
        if (info["cpu"]["reserved"], info["ram"]["reserved"]) == (
                sum(r["vcpu"] for r in later), sum(r["vram"] for r in later)):
            vcpu, vram = info["cpu"]["reserved"], info["ram"]["reserved"]
    if info["cpu"]["reserved"] != vcpu:
        raise Broken(f"{node.name} {where}: {info['cpu']['reserved']} vcpu reserved, the "
                     f"running rows hold {vcpu}")
    if info["ram"]["reserved"] != vram:
        raise Broken(f"{node.name} {where}: {info['ram']['reserved']} bytes of ram reserved, "
                     f"the rows hold {vram}")
    disk_total += node._snapshots()[1]
    if info["disk"]["reserved"] != disk_total:
        raise Broken(f"{node.name} {where}: {info['disk']['reserved']} bytes of disk reserved, "
                     f"the rows (disks and snapshots) hold {disk_total}")
    zombies = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] == "Z" and int(stat[1]) == node.daemon.pid:
                zombies.append(int(entry))
    if zombies:
        time.sleep(2)  # the supervisor reaps on its second pass
        zombies = [pid for pid in zombies if Path(f"/proc/{pid}").exists()
                   and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"]
        if zombies:
            raise Broken(f"{node.name} {where}: zombie children {zombies}")
    if "Traceback" in node.daemon.log():
        raise Broken(f"{node.name} {where}: a traceback in the daemon's log")
    node.sample_rss()


class Soak:
    def __init__(self, nodes: list[Node], rng: random.Random):
        self.nodes = nodes
        self.rng = rng
        self.counter = 0
        self.done: dict[str, list[int]] = {}  # operation: [succeeded, refused or failed]
        self.refusals: dict[str, set[str]] = {}

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def pick(self, node: Node, *states: str) -> dict | None:
        vms = node.vms(*states)
        return self.rng.choice(vms) if vms else None

    def snapshot_of(self, node: Node, vm: dict) -> str | None:
        names = sorted(node.snapshot_rows().get(vm["id"], set()))
        return self.rng.choice(names) if names else None

    def argv(self, node: Node, operation: str) -> list[str] | None:
        """The command line of one operation, or None when no VM fits it."""
        rng = self.rng
        stopped = ("created", "shutdown", "crashed")
        if operation == "create":
            count = rng.choice([1, 1, 2])
            return ["vm", "create", "-t", "tiny", "--name", self.name("s")] + (
                ["-n", str(count)] if count > 1 else [])
        if operation == "reload":
            return ["node", "reload"]
        states = {"start": stopped, "stop": ("running", "paused"), "pause": ("running",),
                  "resume": ("paused",), "snapshot": (), "snapshot-memory": ("running",),
                  "restore": (), "snapshot-rm": (), "clone": stopped, "disk-resize": stopped,
                  "vram": stopped, "rm": ()}[operation]
        vm = self.pick(node, *states)
        if vm is None:
            return None
        name = vm["name"]
        if operation == "stop":
            return ["vm", "stop", name] + (["--force"] if rng.random() < 0.7 else [])
        if operation in ("start", "pause", "resume"):
            return ["vm", operation, name]
        if operation in ("snapshot", "snapshot-memory"):
            return ["vm", "snapshot", "create", name, self.name("snap")] + (
                ["--memory"] if operation == "snapshot-memory" else [])
        if operation in ("restore", "snapshot-rm"):
            snapshot = self.snapshot_of(node, vm)
            if snapshot is None:
                return None
            return ["vm", "snapshot", "restore" if operation == "restore" else "rm", name, snapshot]
        if operation == "clone":
            return ["vm", "clone", name, "--to", self.name("c")]
        if operation == "disk-resize":
            return ["vm", "disk", "resize", name, "os", f"+{rng.choice([1, 8, 64])}M"]
        if operation == "vram":
            return ["vm", "set", name, f"vram={rng.choice([96, 128, 160])}MiB"]
        return ["vm", "rm", name, "--force"]

    def run(self, node: Node, argv: list[str], operation: str = "") -> None:
        result = node.cli(*argv)
        if operation:
            outcome = self.done.setdefault(operation, [0, 0])
            outcome[0 if result.returncode == 0 else 1] += 1
            if result.returncode:
                self.refusals.setdefault(operation, set()).add(
                    result.stderr.splitlines()[0][:110] if result.stderr else "?")
        if result.returncode not in (0, 1, 2) or "Traceback" in result.stderr:
            raise Broken(f"{node.name}: `virshle {' '.join(argv)}` exit {result.returncode}: "
                         f"{result.stderr.strip()[-500:]}")
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        if result.returncode and len(errors) != 1:
            raise Broken(f"{node.name}: `virshle {' '.join(argv)}` failed without one error line: "
                         f"{result.stderr.strip()[-500:]}")

    def in_flight(self, node: Node, argv: list[str]) -> subprocess.Popen:
        return subprocess.Popen([VIRSHLE, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "VIRSHLE_CONFIG": str(node.daemon.config)})

    def fault(self, node: Node, fault: str) -> str:
        rng = self.rng
        operation = rng.choice(["create", "start", "stop", "snapshot", "snapshot-memory", "restore",
                                "snapshot-rm", "clone", "disk-resize", "rm"])
        argv = self.argv(node, operation) or ["vm", "create", "-t", "tiny", "--name", self.name("f")]
        if fault == "kill-daemon":
            cli = self.in_flight(node, argv)
            time.sleep(rng.uniform(0, 0.6))
            node.daemon.kill9()
            cli.wait(60)
            node.restart()
        elif fault == "kill-cli":
            cli = self.in_flight(node, argv)
            time.sleep(rng.uniform(0, 0.6))
            cli.kill()
            cli.wait()
        elif fault == "kill-qemu":
            vm = self.pick(node, "running", "paused")
            if vm is None:
                return "kill-qemu (none running)"
            pid = qemus_of(node.root).get(vm["uuid"])
            if pid:
                with contextlib.suppress(ProcessLookupError):  # it may have ended by itself
                    os.kill(pid, signal.SIGKILL)
                wait_for(lambda: pid not in qemus_of(node.root).values(), timeout=10,
                         what="the killed QEMU to end")  # else the checks race the kill
        elif fault == "kill-qemu-img":  # with its daemon: a power loss in the middle
            vm = self.pick(node, "created", "shutdown", "crashed")
            if vm is None:
                return "kill-qemu-img (none stopped)"
            argv = rng.choice([["vm", "snapshot", "create", vm["name"], self.name("snap")],
                               ["vm", "disk", "resize", vm["name"], "os", "+16M"]])
            cli = self.in_flight(node, argv)
            deadline = time.monotonic() + rng.uniform(0.05, 0.5)
            killed = False
            while time.monotonic() < deadline and not killed:
                for pid in _qemu_imgs(vm["uuid"]):
                    with contextlib.suppress(ProcessLookupError):  # it finished first
                        os.kill(pid, signal.SIGKILL)
                        killed = True
                time.sleep(0.005)
            node.daemon.kill9()
            cli.wait(60)
            node.restart()
        elif fault == "sigstop":
            os.kill(node.daemon.pid, signal.SIGSTOP)
            cli = self.in_flight(node, ["node", "ping"])
            time.sleep(rng.uniform(1, 3))
            os.kill(node.daemon.pid, signal.SIGCONT)
            cli.wait(60)
        elif fault == "full-disk":
            if node.mount is None:
                return "full-disk (not on a tmpfs)"
            filler = node.root / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)
            try:
                for _ in range(3):
                    step = self.argv(node, rng.choice(["create", "snapshot", "snapshot-memory",
                                                       "disk-resize", "stop", "clone"]))
                    if step:
                        self.run(node, step)
            finally:
                filler.unlink(missing_ok=True)
            node.restart()  # its reserve comes back
        return f"{fault} during `{' '.join(argv)}`"


def _qemu_imgs(uuid: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-img" in argv.split(b"\0", 1)[0] and uuid.encode() in argv:
                found.append(int(entry))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--fault-rate", type=float, default=0.15)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    print(f"soak: seed {seed}, {args.steps} steps (replay: bench/soak.py --steps {args.steps} "
          f"--seed {seed})", flush=True)
    guest = REPO / ".cache" / "guest"
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(guest)], check=True,
                   stdout=subprocess.DEVNULL)
    nodes: list[Node] = []
    soak = None
    keep = False
    faults: dict[str, int] = {}
    started = time.monotonic()
    try:
        nodes = [Node("A", guest, None), Node("B", guest, 700 if os.geteuid() == 0 else None)]
        soak = Soak(nodes, rng)
        for step in range(1, args.steps + 1):
            node = rng.choice(nodes)
            try:
                if rng.random() < args.fault_rate:
                    fault = rng.choice(FAULTS)
                    said = soak.fault(node, fault)
                    faults[fault] = faults.get(fault, 0) + 1
                    print(f"  step {step}: node {node.name}: {said}", flush=True)
                    for each in nodes:
                        check(each, f"after step {step} ({said})")
                    continue
                operation = rng.choice(OPERATIONS)
                argv = soak.argv(node, operation)
                if argv is not None:
                    soak.run(node, argv, operation)
                if step % 10 == 0:
                    for each in nodes:
                        check(each, f"at step {step}")
            except Broken as exc:
                print(f"BROKEN at step {step} (seed {seed}): {exc}", flush=True)
                for each in nodes:
                    print(f"  node {each.name}: its log is {each.daemon.log_path}; its end:", flush=True)
                    lines = [line for line in each.daemon.log().splitlines() if " TRACE " not in line]
                    for line in lines[-25:]:
                        print(f"    {line[:200]}")
                keep = True
                return 1
        for each in nodes:
            check(each, "at the end")
    finally:
        for node in nodes:
            node.close()
        if not keep:  # a broken run keeps its roots and logs to look at
            remove_short_dirs()
    took = time.monotonic() - started
    print(f"soak: {args.steps} steps in {took:.0f}s, no invariant broken; faults: "
          + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
    print("  operations (done/refused): " + ", ".join(
        f"{k} {v[0]}/{v[1]}" for k, v in sorted(soak.done.items())))
    for node in nodes:
        print(f"  node {node.name}: peak daemon RSS {node.peak_rss / 1024**2:.1f} MiB")
    if os.environ.get("SOAK_VERBOSE"):
        for operation, said in sorted(soak.refusals.items()):
            for line in sorted(said)[:6]:
                print(f"    {operation}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
