"""Every verb as safe as create (issue 20), where a running guest is needed: memory
restores, a full root disk, a QEMU killed in a savevm, and the console's WebSocket.

The guest is the small test guest (no NIC); the node's root lives on a small tmpfs, so
that the disk can be filled on purpose.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import MARKER, Daemon, one_line_error, short_dir, wait_for, write_guest_config

pytestmark = [pytest.mark.e2e]
for tool in ("qemu-system-x86_64", "qemu-img"):
    if not __import__("shutil").which(tool):
        pytestmark.append(pytest.mark.skip(reason=f"{tool} is not installed"))
if os.geteuid() != 0:
    pytestmark.append(pytest.mark.skip(reason="mounts a tmpfs"))


@pytest.fixture(scope="module")
def node(guest):
    directory = short_dir("hard")
    mount = directory / "root"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600m", "tmpfs", str(mount)], check=True)
    config = write_guest_config(directory, guest, "qemu")
    config.write_text(config.read_text().replace(
        config.read_text().split('root = "', 1)[1].split('"', 1)[0], str(mount / "n"), 1)
        .replace("stop_timeout = 20", "stop_timeout = 5"))
    daemon = Daemon(directory, config, reaped=True)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.close()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def boot(node: Daemon, name: str, fresh: bool = True) -> None:
    if fresh:
        assert node.cli("vm", "create", "-t", "tiny", "--name", name).returncode == 0
    started = node.cli("vm", "start", name)
    assert started.returncode == 0, started.stderr
    wait_for(lambda: MARKER in node.cli("vm", "logs", "--name", name).stdout, timeout=120,
             what=f"{name} to boot")


def state(node: Daemon, name: str) -> str:
    return node.cli("vm", "info", "--name", name, "--json", "--refresh").json()["state"]


def qmp_status(node: Daemon, name: str) -> str:
    import json

    vm = node.cli("vm", "info", "--name", name, "--json").json()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(node.root / "vm" / vm["uuid"] / "monitor.sock"))
    reader = sock.makefile("rb")
    reader.readline()
    for command in ({"execute": "qmp_capabilities"}, {"execute": "query-status"}):
        sock.sendall(json.dumps(command).encode() + b"\n")
        while True:
            reply = json.loads(reader.readline())
            if "return" in reply or "error" in reply:
                break
    sock.close()
    return reply["return"]["status"]


def test_a_memory_restore_into_another_shape_is_refused_before_anything(node):
    """Seen: after `vm set m vram=...`, the restore failed with "Size mismatch: pc.ram" once
    QEMU had reverted the disks, and left QEMU in restore-vm while `vm info` said running."""
    boot(node, "m")
    assert node.cli("vm", "snapshot", "create", "m", "live", "--memory").returncode == 0
    assert node.cli("vm", "stop", "m", "--force").returncode == 0
    assert node.cli("vm", "set", "m", "vram=128MiB").returncode == 0
    boot(node, "m", fresh=False)
    refused = node.cli("vm", "snapshot", "restore", "m", "live")
    assert refused.returncode == 1
    line = one_line_error(refused)
    assert "256MiB" in line and "128MiB" in line, line
    assert qmp_status(node, "m") == "running"
    assert state(node, "m") == "running"
    assert node.cli("vm", "rm", "m", "--force").returncode == 0


def test_a_forced_stop_works_on_a_full_disk(node):
    """Seen: with the root's filesystem full, `vm stop --force` failed with "database or disk
    is full" (the journal's write came before the kill), and the VM kept running."""
    boot(node, "full")
    vm = node.cli("vm", "info", "--name", "full", "--json").json()
    pid = int((node.root / "vm" / vm["uuid"] / "vmm.pid").read_text())
    filler = node.root / "filler"
    free = os.statvfs(node.root)
    leave = 100 * 1024**2  # less than the guest's memory: a memory snapshot is refused
    count = max(0, (free.f_bavail * free.f_frsize - leave) // 1024**2)
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", f"count={count}"],
                   capture_output=True, check=True)
    try:
        refused = node.cli("vm", "snapshot", "create", "full", "big", "--memory")
        assert refused.returncode == 1 and "free" in one_line_error(refused)
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "oflag=append",
                        "conv=notrunc"], capture_output=True)  # and now nothing is left
        assert os.statvfs(node.root).f_bavail == 0
        stopped = node.cli("vm", "stop", "full", "--force")
        assert stopped.returncode == 0, stopped.stderr
        assert not Path(f"/proc/{pid}").exists() or b"qemu" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        filler.unlink(missing_ok=True)
    assert state(node, "full") == "shutdown"
    assert node.cli("vm", "rm", "full").returncode == 0


def test_a_qemu_killed_in_a_savevm_leaves_no_leaked_clusters(node):
    """Seen: a QEMU killed during savevm left leaked clusters nobody reported (`qemu-img
    check` exit 3), and a snapshot row with nothing behind it."""
    boot(node, "k")
    vm = node.cli("vm", "info", "--name", "k", "--json").json()
    pid = int((node.root / "vm" / vm["uuid"] / "vmm.pid").read_text())
    from tests.support import VIRSHLE

    taking = subprocess.Popen([VIRSHLE, "vm", "snapshot", "create", "k", "dying", "--memory"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "VIRSHLE_CONFIG": str(node.config)})
    time.sleep(0.6)  # into the savevm
    os.kill(pid, signal.SIGKILL)
    taking.wait(60)
    wait_for(lambda: state(node, "k") in ("crashed", "shutdown"), timeout=30, what="k to be down")
    assert node.cli("vm", "snapshot", "ls", "k", "--json").json() == [] or taking.returncode == 0
    disk = next(d["path"] for d in vm["disks"] if d["name"] == "os")
    check = subprocess.run(["qemu-img", "check", disk], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert node.cli("vm", "rm", "k").returncode == 0


def test_the_console_websocket_caps_a_message_and_says_switching_protocols(node):
    """Seen: unfinished fragments piled up (300 MiB of them cost 330 MB), and the 101 reply
    had an empty reason phrase."""
    boot(node, "ws")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(node.socket))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/v1/vms/ws/console HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head[:80]
    before = _rss(node.pid)
    payload = b"y" * (1024 * 1024)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    frame = bytes([0x02, 0x80 | 127]) + len(payload).to_bytes(8, "big") + mask + masked  # FIN=0
    continuation = bytes([0x00, 0x80 | 127]) + len(payload).to_bytes(8, "big") + mask + masked
    closed = False
    sock.settimeout(10)
    try:
        sock.sendall(frame)
        for _ in range(64):
            sock.sendall(continuation)
    except OSError:
        closed = True
    if not closed:  # a close frame, then the end of the stream
        try:
            while sock.recv(65536):
                pass
            closed = True
        except OSError:
            closed = True
    sock.close()
    assert closed
    assert _rss(node.pid) - before < 24 * 1024**2
    assert node.cli("vm", "rm", "ws", "--force").returncode == 0


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
