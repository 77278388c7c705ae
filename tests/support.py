"""What only this repository's tests use: the test guest built by scripts/, nodes over SSH,
a console reader. The fixtures and helpers every test uses come from Virshle's pytest plugin
(``virshle_core.testing``), handed on here for the tests that import them by name.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from virshle_core.testing import (  # noqa: F401
    BIN, LIMITS, MARKER, VIRSHLE, Daemon, Result, alive, make_plugin_dist, network_config,
    remove_short_dirs, run_cli, short_dir, wait_for, write_config, write_guest_config,
)
from virshle_core.testing.netlab import free_port  # noqa: F401
from virshle_core.testing.sshlab import SshNodes, ssh_nodes  # noqa: F401

REPO = Path(__file__).parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
BUILT_IN_PLUGINS = {"ch", "cloudinit", "etcd", "kea", "lb", "macvtap", "metrics", "ovs", "qemu", "web"}
GUEST_DIR = REPO / ".cache" / "guest"


@pytest.fixture(scope="session")
def guest() -> Path:
    """The small test guest (kernel + busybox initramfs + a 64 MiB disk), built once and cached."""
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(GUEST_DIR)], check=True)
    return GUEST_DIR


def installed_hypervisors() -> list[str]:
    import shutil

    found = []
    if shutil.which("qemu-system-x86_64"):
        found.append("qemu")
    if shutil.which("cloud-hypervisor"):
        found.append("ch")
    return found


class Console:
    """A `virshle` command joined to a console through pipes (``vm attach``, ``vm start --attach``).

    Its output is read in the background; ``expect`` waits for bytes, ``send`` types,
    ``detach`` sends Ctrl-] and checks the command ended well. Always ended on exit.
    """

    def __init__(self, argv: list[str], env: dict):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.output = bytearray()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while chunk := self.proc.stdout.read1(4096):
            self.output.extend(chunk)

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def expect(self, data: bytes, timeout: float = 30) -> None:
        wait_for(lambda: data in self.output, timeout=timeout, what=f"{data!r} on the console")

    def detach(self) -> str:
        """Ctrl-]: the command must end with status 0; returns what it said on stderr."""
        self.send(b"\x1d")
        assert self.proc.wait(15) == 0
        return self.proc.stderr.read().decode()

    def __enter__(self) -> "Console":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def installed_wheels(tmp_path_factory):
    """`virshle[all]` from freshly built wheels and the wheelhouse of its dependencies
    (``make dist``), installed with no package index, in /opt/virshle-test-<pid>/venv."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import dist
    finally:
        sys.path.remove(str(REPO / "scripts"))
    wheels = tmp_path_factory.mktemp("dist")
    warned: list[str] = []
    made = dist.build(wheels, warned)
    assert warned == []  # setuptools says nothing: SPDX licence, a README each
    names = {path.name.split("-")[0] for path in made}
    assert names == {"virshle"} | {f"virshle_{name}" for name in BUILT_IN_PLUGINS}
    assert len([p for p in made if p.suffix == ".whl"]) == len(names)  # and an sdist each
    assert any(p.name.startswith("asyncssh-") for p in dist.wheelhouse(wheels))
    base = Path(f"/opt/virshle-test-{os.getpid()}")
    try:
        base.mkdir(mode=0o755)
        venv = base / "venv"
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "--no-index", "--find-links", str(wheels), "virshle[all]"], check=True,
                       cwd="/")
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- helpers several test modules share ---------------------------------------------


def exchange(daemon, method: str, target: str, body: bytes | None = None,
             headers: dict[str, str] | None = None, content_type: str = "application/json",
             timeout: float = 10) -> tuple[int, str, bytes]:
    """One raw HTTP request on the daemon's socket (no client library between): the status,
    the reply's content type and its payload (unchunked)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(daemon.socket))
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if body is not None:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    sock.sendall(head.encode() + b"\r\n" + (body or b""))
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if fields.get("transfer-encoding") == "chunked":
        decoded, rest = b"", payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if not size:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2:]
        payload = decoded
    return int(lines[0].split()[1]), fields.get("content-type", ""), payload


def raw(daemon, method: str, path: str, body: bytes | None = None,
        content_type: str = "application/json") -> tuple[int, object]:
    """One raw HTTP request on the daemon's socket: the status and the decoded JSON reply."""
    status, _, payload = exchange(daemon, method, path, body, content_type=content_type)
    return status, json.loads(payload) if payload else None


def follow_events(daemon, count: int | None = None) -> tuple[list[dict], threading.Thread]:
    """Follow ``GET /events`` in a thread: the list its lines go into (the first, hello,
    is there on return), and the thread, which ends after ``count`` lines (or never)."""
    from virshle_core.client import http

    lines: list[dict] = []
    ready = threading.Event()

    def follow() -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(daemon.socket))
        response = http.request(sock, "GET", "/api/v1/events")
        for line in response.iter_lines():
            lines.append(json.loads(line))
            ready.set()
            if count is not None and len(lines) >= count:
                break
        response.close()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert ready.wait(10), "the event stream did not open"
    return lines, thread


def rows(daemon) -> list[tuple]:
    """Every row of the node's store, as (id, name, pending)."""
    conn = sqlite3.connect(daemon.root / "virshle.sqlite")
    try:
        return conn.execute("SELECT id, name, pending FROM vms ORDER BY id").fetchall()
    finally:
        conn.close()


def one_line_error(result) -> str:
    """The error a command printed (a result, or its stderr): one ``Error:`` line (and its
    hint), never a traceback."""
    stderr = result if isinstance(result, str) else result.stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def snapshot(daemon) -> tuple:
    """What bad input must not change: the rows, and the files under vm/ and cache/."""
    conn = sqlite3.connect(f"file:{daemon.root / 'virshle.sqlite'}?mode=ro", uri=True)
    try:
        table = conn.execute("SELECT id, uuid, name, state, pending, disks, nets FROM vms "
                             "ORDER BY id").fetchall()
        sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'vms'").fetchall()
    finally:
        conn.close()
    files = sorted(str(p.relative_to(daemon.root)) for top in ("vm", "cache")
                   for p in (daemon.root / top).rglob("*"))
    return table, sequence, files


def attach_console(node, name: str, send: bytes, expect: bytes, timeout: float = 30) -> bytes:
    """Run `virshle vm attach` with a pipe: send a line, wait for `expect`, detach with Ctrl-]."""
    with Console([VIRSHLE, "vm", "attach", "--name", name],
                 {**os.environ, "VIRSHLE_CONFIG": str(node.config)}) as console:
        time.sleep(0.5)
        console.send(send)
        console.expect(expect, timeout)
        err = console.detach()
        assert "Press Ctrl-] to detach" in err and "[detached: " in err
    return bytes(console.output)
