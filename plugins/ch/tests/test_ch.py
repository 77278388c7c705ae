"""The ch plugin held to cloud-hypervisor's OpenAPI spec, and its process and state
handling exercised against a stub that follows that spec (tests/stubs/ch_stub.py).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from virshle_core.testing import Daemon, wait_for, write_guest_config
from tests.stubs.ch_stub import SPEC, load_spec
from virshle_ch.api import ChApi
from virshle_ch.vmm import vm_config
from virshle_ch import ChConfig
from virshle_core.models import Disk, NetAttachment, Vm

REPO = Path(__file__).resolve().parents[3]


def request_problem(method: str, endpoint: str, body) -> str | None:
    from openapi_core.datatypes import RequestParameters

    class Request:
        host_url = "http://localhost"
        parameters = RequestParameters()
        content_type = "application/json"
        full_url_pattern = f"http://localhost/api/v1/{endpoint}"

    request = Request()
    request.path = f"/api/v1/{endpoint}"
    request.method = method.lower()
    request.body = None if body is None else json.dumps(body).encode()
    try:
        _openapi().validate_request(request)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc} {getattr(exc.__cause__, 'schema_errors', '')}"
    return None


_cache = {}


def _openapi():
    if "api" not in _cache:
        _cache["api"] = load_spec(SPEC)
    return _cache["api"]


def make_vm(tmp_path, **fields) -> Vm:
    base = dict(id=1, uuid="0f0e0d0c-0000-4000-8000-000000000001", name="web", node="default",
                template="xs", vcpu=2, vram=512 * 1024**2, dir=str(tmp_path))
    base.update(fields)
    return Vm(**base)


@pytest.mark.parametrize("variant", ["kernel", "firmware", "config-firmware"])
def test_vm_config_follows_the_spec(tmp_path, variant):
    disks = [Disk(name="os", path="/v/os", format="qcow2", size=1),
             Disk(name="seed", path="/v/seed", format="raw", readonly=True, size=1)]
    fields = {"kernel": {"kernel": "/boot/vmlinuz", "initramfs": "/boot/initrd", "cmdline": "console=ttyS0"},
              "firmware": {"firmware": "/fw/CLOUDHV.fd"}, "config-firmware": {}}[variant]
    vm = make_vm(tmp_path, disks=disks, **fields)
    attachments = [NetAttachment(net="main", type="tap", ifname="vs1main", mac="02:aa:00:00:00:01")]
    body = vm_config(vm, attachments, ChConfig(firmware="/fw/hypervisor-fw"))
    assert request_problem("PUT", "vm.create", body) is None
    assert body["serial"] == {"mode": "Socket", "socket": str(tmp_path / "serial.sock")}
    assert body["console"] == {"mode": "Off"}
    assert [d["image_type"] for d in body["disks"]] == ["Qcow2", "Raw"]
    assert [d["readonly"] for d in body["disks"]] == [False, True]  # the cloud-init seed
    if variant != "kernel":  # a UEFI OS disk boots through the firmware payload
        assert body["payload"] == {"firmware": "/fw/CLOUDHV.fd" if variant == "firmware"
                                   else "/fw/hypervisor-fw"}
    assert body["disks"][0]["backing_files"] is True  # overlays on the cached image
    assert body["net"] == [{"tap": "vs1main", "id": "net-main", "mac": "02:aa:00:00:00:01"}]
    assert body["cpus"] == {"boot_vcpus": 2, "max_vcpus": 2}
    assert body["memory"] == {"size": 512 * 1024**2}


def test_the_validator_catches_mistakes():
    assert request_problem("PUT", "vm.create", {"payload": {"kernel": "/k"},
                                                 "disks": [{"path": "/d", "image-type": "Raw"}]})
    assert request_problem("PUT", "vm.create", {"cpus": {"boot_vcpus": 1}})  # no payload
    assert request_problem("PUT", "vm.nothing", None)


def test_every_endpoint_the_plugin_calls_is_in_the_spec(monkeypatch):
    calls = []
    monkeypatch.setattr(ChApi, "request", lambda self, method, endpoint, body=None: calls.append(
        (method, endpoint, body)))
    api = ChApi("/nowhere")
    for method in ("ping", "info", "boot", "power_button", "shutdown", "delete", "shutdown_vmm",
                   "pause", "resume", "reboot"):
        getattr(api, method)()
    api.create({"payload": {"kernel": "/k"}})
    assert len(calls) == 11
    for method, endpoint, body in calls:
        assert request_problem(method, endpoint, body) is None, (method, endpoint)


def test_no_firmware_no_kernel_is_a_clear_error(tmp_path):
    from virshle_core import VirshleError

    with pytest.raises(VirshleError, match=r"needs a kernel or a firmware"):
        vm_config(make_vm(tmp_path), [], ChConfig())


# --- process and state handling against the stub ---------------------------------------------


@pytest.fixture
def stub_binary(tmp_path) -> Path:
    path = tmp_path / "bin" / "cloud-hypervisor-stub"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {REPO / "tests" / "stubs" / "ch_stub.py"} '
                    f'--spec {SPEC} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def ch_node(tmp_path, guest, stub_binary):
    config = write_guest_config(tmp_path, guest, "ch", extra=f'\n[ch]\nbinary = "{stub_binary}"\n')
    daemon = Daemon(tmp_path, config)
    yield daemon
    daemon.stop()
    daemon.kill_vmms()
    for pidfile in (daemon.root / "vm").glob("*/console-keeper.pid"):
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def violations(node) -> list[dict]:
    return [json.loads(line) for f in (node.root / "vm").glob("*/ch.sock.violations")
            for line in f.read_text().splitlines()]


def test_lifecycle_on_the_stub(ch_node):
    node = ch_node.start()
    assert node.cli("vm", "create", "-t", "tiny", "--name", "chvm").returncode == 0
    started = node.cli("vm", "start", "--name", "chvm")
    assert started.returncode == 0, started.stderr + node.log()
    info = node.cli("vm", "info", "--name", "chvm", "--json").json()
    assert (info["state"], info["hypervisor"]) == ("running", "ch")
    # the console keeper logs the serial port
    wait_for(lambda: "VIRSHLE-GUEST-READY" in node.cli("vm", "logs", "--name", "chvm").stdout,
             timeout=15, what="the marker in vm logs")
    from tests.support import attach_console

    assert b"stub-echo: hello-ch" in attach_console(node, "chvm", b"hello-ch\n", b"stub-echo: hello-ch")

    # the daemon dies; the VMM does not; a new daemon re-adopts it
    vm_dir = node.root / "vm" / info["uuid"]
    pid = int((vm_dir / "vmm.pid").read_text())
    node.process.kill()
    node.process.wait(10)
    node.process = None
    assert Path(f"/proc/{pid}").exists()
    node.start()
    assert node.cli("vm", "info", "--name", "chvm", "--json").json()["state"] == "running"

    # pause, resume and reboot through vm.pause, vm.resume and vm.reboot; the states follow
    paused = node.cli("vm", "pause", "chvm", "--json")
    assert paused.returncode == 0, paused.stderr
    assert paused.json()["state"] == "paused"
    assert node.cli("vm", "info", "--name", "chvm", "--json").json()["state"] == "paused"
    assert node.cli("vm", "resume", "chvm", "--json").json()["state"] == "running"
    rebooted = node.cli("vm", "reboot", "chvm")
    assert rebooted.returncode == 0 and rebooted.stdout.startswith("Rebooted VM chvm"), rebooted.stderr
    wait_for(lambda: node.cli("vm", "logs", "--name", "chvm").stdout.count("VIRSHLE-GUEST-READY") >= 2,
             timeout=15, what="the guest booting again")
    assert node.cli("vm", "info", "--name", "chvm", "--json").json()["state"] == "running"

    # graceful stop: the power button, the guest powers off, the VMM ends
    stopped = node.cli("vm", "stop", "--name", "chvm")
    assert stopped.returncode == 0 and stopped.stdout.startswith("Stopped VM chvm")
    assert node.cli("vm", "info", "--name", "chvm", "--json").json()["state"] == "shutdown"
    assert "power button, powering off" in node.cli("vm", "logs", "--name", "chvm").stdout

    # a guest power-off while running (no stop call) reads shutdown, not crashed
    assert node.cli("vm", "start", "--name", "chvm").returncode == 0
    ChApi(str(vm_dir / "ch.sock")).power_button()
    wait_for(lambda: node.cli("vm", "info", "--name", "chvm", "--json").json()["state"] == "shutdown",
             timeout=15, what="shutdown after a guest power-off")

    # the VMM killed: crashed
    assert node.cli("vm", "start", "--name", "chvm").returncode == 0
    os.kill(int((vm_dir / "vmm.pid").read_text()), signal.SIGKILL)
    wait_for(lambda: node.cli("vm", "info", "--name", "chvm", "--json").json()["state"] == "crashed",
             timeout=15, what="crashed")

    assert node.cli("vm", "rm", "--name", "chvm").returncode == 0
    assert violations(node) == []
    assert list((node.root / "vm").iterdir()) == []


def test_a_failed_boot_leaves_no_process(ch_node):
    node = ch_node.start(env={"CH_STUB_FAIL": "vm.boot"})
    assert node.cli("vm", "create", "-t", "tiny", "--name", "noboot").returncode == 0
    result = node.cli("vm", "start", "--name", "noboot")
    assert result.returncode == 1
    assert "cloud-hypervisor vm.boot failed (HTTP 500): Error from the stub on vm.boot" in result.stderr
    info = node.cli("vm", "info", "--name", "noboot", "--json").json()
    assert info["state"] == "created"
    vm_dir = node.root / "vm" / info["uuid"]
    assert not (vm_dir / "vmm.pid").exists() and not (vm_dir / "ch.sock").exists()
    assert violations(node) == []


def test_fd_backed_nics_are_refused_clearly(tmp_path):
    from virshle_core import VirshleError

    attachment = NetAttachment(net="up", type="mac_v_tap", ifname="vm1n0", fds=[9])
    with pytest.raises(VirshleError, match="cannot pass yet"):
        vm_config(make_vm(tmp_path, kernel="/k"), [attachment], ChConfig())
