"""Starting, stopping and reading one cloud-hypervisor process.

Gotchas handled here (see cloud-hypervisor's docs and source):
- after ``vm.shutdown`` the VM reads ``Created``, not ``Shutdown``;
- a guest power-off ends the VMM process: a clean end is told apart from a
  crash by the ``vm``/``shutdown`` event in the event-monitor file;
- an old API socket is not always removed by the VMM: unlink it first;
- ``image_type`` is set explicitly (auto-detection is deprecated);
- the serial port is in ``Socket`` mode and the virtio console ``Off``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from virshle_core import VirshleError, log_command
from virshle_core.models import VmmHandle
from virshle_core import vmm as process

from .config import NAME, ChConfig
from .api import ChApi, ChApiError


def paths(vm) -> dict[str, Path]:
    base = Path(vm.dir)
    return {
        "pid": base / "vmm.pid", "api": base / "ch.sock", "events": base / "ch-events.json",
        "vmm_log": base / "vmm.log", "serial": base / "serial.sock",
        "console": base / "console.sock", "log": base / "console.log",
        "keeper_pid": base / "console-keeper.pid",
    }


def vm_config(vm, attachments: list, config: ChConfig) -> dict:
    """The ``VmConfig`` body of ``vm.create`` for ``vm``."""
    p = paths(vm)
    if vm.kernel:
        payload = {"kernel": vm.kernel, "cmdline": vm.cmdline or "console=ttyS0"}
        if vm.initramfs:
            payload["initramfs"] = vm.initramfs
    elif vm.firmware or config.firmware:
        payload = {"firmware": vm.firmware or config.firmware}
    else:
        raise VirshleError(
            f"VM {vm.name!r}: cloud-hypervisor needs a kernel or a firmware to boot its disk",
            "Set [ch] firmware (CLOUDHV.fd or hypervisor-fw), or give the template a firmware.",
            code="no_firmware",
        )
    body = {
        "cpus": {"boot_vcpus": vm.vcpu, "max_vcpus": vm.vcpu},
        "memory": {"size": vm.vram},
        "payload": payload,
        "disks": [
            {
                "path": disk.path,
                "readonly": disk.readonly,
                "image_type": "Qcow2" if disk.format == "qcow2" else "Raw",
                "backing_files": disk.format == "qcow2",
                "id": f"disk-{disk.name}",
            }
            for disk in vm.disks
        ],
        "rng": {"src": "/dev/urandom"},
        "serial": {"mode": "Socket", "socket": str(p["serial"])},
        "console": {"mode": "Off"},
    }
    nets = []
    for attachment in attachments:
        if attachment.fds:
            raise VirshleError(
                f"VM {vm.name!r}: net {attachment.net!r} ({attachment.type}) hands the VMM a file "
                "descriptor, which this cloud-hypervisor backend cannot pass yet",
                "Use a tap net on cloud-hypervisor, or [host] hypervisor = \"qemu\".",
                code="unsupported_net")
        net = {"tap": attachment.ifname, "id": f"net-{attachment.net}"}
        if attachment.mac:
            net["mac"] = attachment.mac
        if not attachment.offload:
            net.update(offload_csum=False, offload_tso=False, offload_ufo=False)
        nets.append(net)
    if nets:
        body["net"] = nets
    return body


def read_pid(path: Path) -> int | None:
    return process.read_pid(path)


def alive(pid: int, marker: str) -> bool:
    """The process exists, has not ended, and its command line names ``marker``."""
    return process.alive(pid, marker.encode())


def _reap_later(proc: subprocess.Popen) -> None:
    # The VMM is our child while this daemon lives; reap it when it ends.
    threading.Thread(target=proc.wait, daemon=True).start()


def start(vm, attachments: list, config: ChConfig) -> VmmHandle:
    binary = shutil.which(config.binary)
    if not binary:
        raise VirshleError(
            f"VM {vm.name!r}: {config.binary} is not installed",
            "Install cloud-hypervisor (no Debian package: take its static release binary), "
            "set [ch] binary, or use [host] hypervisor = \"qemu\".",
            code="hypervisor_missing",
        )
    for label, path in (("kernel", vm.kernel), ("initramfs", vm.initramfs), ("firmware", vm.firmware)):
        if path and not Path(path).is_file():
            raise VirshleError(f"VM {vm.name!r}: {label} {path} is not a file",
                               "Fix the template's path in config.toml.", code="boot_file_missing")
    body = vm_config(vm, attachments, config)
    p = paths(vm)
    for key in ("pid", "api", "events", "serial", "console", "keeper_pid"):
        p[key].unlink(missing_ok=True)
    argv = [binary, "--api-socket", f"path={p['api']}", "--event-monitor", f"path={p['events']}",
            "--log-file", str(p["vmm_log"])]
    log_command(argv)
    with open(p["vmm_log"], "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True,
                                pass_fds=[fd for a in attachments for fd in a.fds])
    p["pid"].write_text(f"{proc.pid}\n")
    _reap_later(proc)
    api = ChApi(str(p["api"]))
    try:
        _wait_for_api(api, proc, vm)
        api.create(body)
        api.boot()
        _start_console_keeper(vm)
    except BaseException:
        process.kill(proc.pid)
        _wait_gone(proc.pid, str(p["api"]), 5)
        _stop_console_keeper(vm)
        _clean(vm)
        raise
    return VmmHandle(pid=proc.pid, hypervisor=NAME)


def _wait_for_api(api: ChApi, proc: subprocess.Popen, vm, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _tail(paths(vm)["vmm_log"])
            raise VirshleError(f"VM {vm.name!r}: cloud-hypervisor exited at once "
                               f"(status {proc.returncode}){': ' + tail if tail else ''}",
                               code="vmm_failed")
        try:
            api.ping()
            return
        except ChApiError:
            time.sleep(0.05)
    raise VirshleError(f"VM {vm.name!r}: cloud-hypervisor's API did not come up in {timeout:g}s",
                       code="vmm_failed")


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _start_console_keeper(vm) -> None:
    p = paths(vm)
    argv = [sys.executable, "-m", "virshle_ch.console_keeper", str(p["serial"]), str(p["console"]),
            str(p["log"])]
    log_command(argv)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    p["keeper_pid"].write_text(f"{proc.pid}\n")
    _reap_later(proc)
    deadline = time.monotonic() + 10
    while not p["console"].exists() and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise VirshleError(f"VM {vm.name!r}: the console keeper could not reach the serial port",
                               code="console_unreachable")
        time.sleep(0.02)


def _stop_console_keeper(vm) -> None:
    p = paths(vm)
    pid = read_pid(p["keeper_pid"])
    if pid is not None and alive(pid, str(p["serial"])):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        _wait_gone(pid, str(p["serial"]), 5)
    p["keeper_pid"].unlink(missing_ok=True)


def _clean_exit_recorded(vm) -> bool:
    """The event monitor saw the VM shut down (a guest power-off), not a crash."""
    try:
        text = paths(vm)["events"].read_text()
    except OSError:
        return False
    for block in text.strip().split("\n\n"):
        try:
            event = json.loads(block)
        except ValueError:
            continue
        if (event.get("source"), event.get("event")) in (("vm", "shutdown"), ("vmm", "shutdown")):
            return True
    return False


def state(vm) -> str:
    p = paths(vm)
    pid = read_pid(p["pid"])
    if pid is None:
        return "created" if vm.state == "created" else "shutdown"
    if not alive(pid, str(p["api"])):
        return "shutdown" if _clean_exit_recorded(vm) else "crashed"
    try:
        ch_state = ChApi(str(p["api"]), timeout=3).info()["state"]
    except (ChApiError, KeyError, TypeError):
        return "running"  # alive but busy; the next reading will tell
    # after vm.shutdown cloud-hypervisor reports "Created": the VM is off
    return {"Running": "running", "Paused": "paused", "BreakPoint": "paused",
            "Shutdown": "shutdown", "Created": "shutdown"}.get(ch_state, "running")


def _wait_gone(pid: int, marker: str, timeout: float) -> bool:
    return process.wait_gone(pid, lambda p: alive(p, marker), timeout)


def _clean(vm) -> None:
    p = paths(vm)
    for key in ("pid", "api", "serial", "console"):
        p[key].unlink(missing_ok=True)


def stop(vm, force: bool, timeout: float) -> None:
    p = paths(vm)
    pid = read_pid(p["pid"])
    marker = str(p["api"])
    if pid is None or not alive(pid, marker):
        _stop_console_keeper(vm)
        _clean(vm)
        return
    api = ChApi(str(p["api"]), timeout=5)
    if not force:
        try:
            api.power_button()  # ACPI: the guest powers off, which ends the VMM
        except ChApiError:
            pass
        _wait_gone(pid, marker, timeout)
    if alive(pid, marker):
        for call in (api.shutdown, api.shutdown_vmm):
            try:
                call()
            except ChApiError:
                pass
        if not _wait_gone(pid, marker, 5):
            process.kill(pid)
            _wait_gone(pid, marker, 5)
    _stop_console_keeper(vm)
    _clean(vm)


def stats(vm):
    """The VMM's cpu time and RSS (its process) and each disk's I/O (``vm.counters``, keyed
    by the ids ``vm_config`` gives the disks); None when it is not running."""
    import psutil

    from virshle_core.models import VmStats

    p = paths(vm)
    pid = read_pid(p["pid"])
    if pid is None or not alive(pid, str(p["api"])):
        return None
    process = psutil.Process(pid)
    times, rss = process.cpu_times(), process.memory_info().rss
    try:
        counters = ChApi(str(p["api"]), timeout=2).request("GET", "vm.counters") or {}
    except ChApiError:
        counters = {}
    disks = []
    for disk in vm.disks:
        counted = counters.get(f"disk-{disk.name}") or {}
        disks.append({"name": disk.name, "read_bytes": counted.get("read_bytes", 0),
                      "written_bytes": counted.get("write_bytes", 0),
                      "reads": counted.get("read_ops", 0), "writes": counted.get("write_ops", 0)})
    return VmStats(cpu_seconds=times.user + times.system, rss_bytes=rss, disks=disks)
