"""Template images from a URL (issue 9): downloaded once, checked, reused; failures leave nothing.

An HTTP server (Python's http.server, and one that breaks off half-way)
runs on the loopback of a namespace this module creates, beside the node
daemon that downloads from it.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from virshle_core.testing.netlab import Netns
from tests.support import Daemon, wait_for, write_config
from tests.support import one_line_error, rows

PORT, BROKEN_PORT, NOTHING_PORT = 8123, 8124, 8125
BREAK_OFF = textwrap.dedent("""
    import socket, sys
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    while True:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 8388608\\r\\n\\r\\n" + b"\\1" * 4194304)
        conn.close()  # half of what was promised
    """)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    files = tmp_path_factory.mktemp("served")
    raw = files / "disk.img"
    raw.write_bytes(os.urandom(3 * 1024 * 1024))
    (files / "disk.img.xz").write_bytes(lzma.compress(raw.read_bytes(), preset=0))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(files / "disk.qcow2"), "64M"],
                   check=True)
    ns = Netns(f"vsh-web{os.getpid() % 100000}")
    servers = [
        ns.popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                  files, PORT], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ns.popen([sys.executable, "-c", BREAK_OFF, BROKEN_PORT], stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL),
    ]
    base = f"http://127.0.0.1:{PORT}"
    templates = {
        "web": (f"{base}/disk.img", sha256(raw)),
        "webxz": (f"{base}/disk.img.xz", sha256(files / "disk.img.xz")),
        "webq": (f"{base}/disk.qcow2", sha256(files / "disk.qcow2")),
        "wrong": (f"{base}/disk.img", "0" * 64),
        "gone": (f"http://127.0.0.1:{NOTHING_PORT}/disk.img", "1" * 64),
        "missing": (f"{base}/nope.img", "2" * 64),
        "cut": (f"http://127.0.0.1:{BROKEN_PORT}/disk.img", "3" * 64),
    }
    directory = tmp_path_factory.mktemp("web-node")
    config = write_config(directory)
    config.write_text(config.read_text() + "".join(
        f'\n[[template.vm]]\nname = "{name}"\n[[template.vm.disk]]\nname = "os"\n'
        f'path = "{url}"\nsha256 = "{digest}"\n' for name, (url, digest) in templates.items()))
    daemon = Daemon(directory, config, netns=ns.name)
    try:
        wait_for(lambda: ns.exec(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PORT}"],
                                 check=False).returncode == 0, timeout=10, what="the web server")
        daemon.start()
        yield daemon, files
    finally:
        daemon.stop()
        for server in servers:
            server.kill()
            server.wait()
        ns.delete()


def cache(daemon) -> list[str]:
    return sorted(p.name for p in (daemon.root / "cache").iterdir())


def test_an_image_is_downloaded_once_checked_and_reused(web):
    from virshle_core.client import NodeClient
    from virshle_core.config import NodeEntry

    daemon, files = web
    client = NodeClient(NodeEntry(name="default", url=f"unix://{daemon.socket}"))
    seen: list = []
    (first,) = client.create_vms({"template": "web", "name": "dl-1"},
                                 on_progress=lambda what, done, total: seen.append((what, done, total)))
    digest = sha256(files / "disk.img")
    cached = daemon.root / "cache" / f"disk.img-{digest[:16]}"
    assert cached.exists() and sha256(cached) == digest
    assert seen and seen[-1] == (f"downloading {cached.name}", 3 * 1024**2, 3 * 1024**2)
    again: list = []
    client.create_vms({"template": "web", "name": "dl-2"},
                      on_progress=lambda what, done, total: again.append(what))
    assert again == []  # reused: nothing long to report
    assert first.disks[0].size == 3 * 1024**2
    assert not [name for name in cache(daemon) if name.endswith(".partial")]


def test_xz_images_are_unpacked_and_qcow2_images_kept_as_they_are(web):
    daemon, files = web
    created = daemon.cli("vm", "create", "-t", "webxz", "--name", "xz", "--json")
    assert created.returncode == 0, created.stderr
    (vm,) = created.json()
    assert vm["disks"][0]["size"] == 3 * 1024**2  # the image inside the .xz
    unpacked = daemon.root / "cache" / f"disk.img-{sha256(files / 'disk.img.xz')[:16]}"
    assert unpacked.read_bytes() == (files / "disk.img").read_bytes()
    created = daemon.cli("vm", "create", "-t", "webq", "--name", "qcow", "--json")
    assert created.returncode == 0, created.stderr
    (vm,) = created.json()
    assert vm["disks"][0]["size"] == 64 * 1024**2 and vm["disks"][0]["format"] == "qcow2"


@pytest.mark.parametrize("template,message", [
    ("wrong", "has sha256"),
    ("gone", "failed: Connection refused"),
    ("missing", "failed: HTTP 404"),
    ("cut", "the transfer"),
])
def test_failed_downloads_leave_nothing(web, template, message):
    daemon, _ = web
    before_rows, before_cache = rows(daemon), cache(daemon)
    result = daemon.cli("vm", "create", "-t", template)
    assert result.returncode == 2
    line = one_line_error(result)
    assert message in line and "http://127.0.0.1:" in line
    if template == "wrong":
        assert "0" * 64 in line  # the digest the template gave
    assert rows(daemon) == before_rows and cache(daemon) == before_cache


def test_a_url_needs_its_sha256(tmp_path):
    from tests.support import run_cli

    config = tmp_path / "config.toml"
    config.write_text('[[template.vm]]\nname = "web"\n[[template.vm.disk]]\nname = "os"\n'
                      'path = "https://example.invalid/disk.img"\n')
    result = run_cli("template", "ls", config=config)
    assert result.returncode == 2
    assert f"{config}:3: template.vm[0].disk[0].sha256: is required for a download" in result.stderr
