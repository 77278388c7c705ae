"""Starting, stopping and reading one QEMU process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from virshle_core import VirshleError, log_command
from virshle_core.models import VmmHandle
from virshle_core import vmm as process

from .config import NAME, QemuConfig, choose_accel

_qmp_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
ESP_GUID = bytes.fromhex("28732ac11ff8d211ba4b00a0c93ec93b")  # C12A7328-F81F-11D2-BA4B-00A0C93EC93B


def paths(vm) -> dict[str, Path]:
    base = Path(vm.dir)
    return {"pid": base / "vmm.pid", "qmp": base / "qmp.sock", "monitor": base / "monitor.sock",
            "console": base / "console.sock", "log": base / "console.log"}


def is_uefi_image(path: str) -> bool:
    """A raw disk with a GPT holding an EFI system partition."""
    try:
        with open(path, "rb") as handle:
            handle.seek(512)
            header = handle.read(92)
            if header[:8] != b"EFI PART":
                return False
            entries_lba = int.from_bytes(header[72:80], "little")
            count = min(int.from_bytes(header[80:84], "little"), 128)
            size = int.from_bytes(header[84:88], "little")
            handle.seek(entries_lba * 512)
            table = handle.read(count * size)
    except OSError:
        return False
    return any(table[i * size:i * size + 16] == ESP_GUID for i in range(count))


def build_argv(vm, attachments: list, config: QemuConfig, binary: str, accel: str) -> list[str]:
    """The QEMU command line for ``vm``: an argument list, never a shell string."""
    p = paths(vm)
    argv = [
        binary, "-name", f"{vm.name},process=virshle-{vm.name}",
        "-uuid", vm.uuid,
        "-machine", config.machine, "-accel", accel,
        "-cpu", "host" if accel == "kvm" else "max",
        "-smp", str(vm.vcpu), "-m", f"{max(1, vm.vram // 1024**2)}M",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-shutdown",
        "-chardev", f"socket,id=serial0,path={p['console']},server=on,wait=off,"
                    f"logfile={p['log']},logappend=on",
        "-serial", "chardev:serial0",
        # two QMP monitors: qmp.sock is the daemon's (its watch holds it for the VM's life),
        # monitor.sock takes one-shot commands (re-adoption, refreshes, an operator's socat)
        "-qmp", f"unix:{p['qmp']},server=on,wait=off",
        "-chardev", f"socket,id=monitor,path={p['monitor']},server=on,wait=off",
        "-mon", "chardev=monitor,mode=control",
        "-pidfile", str(p["pid"]),
        "-daemonize",
        # entropy from the host: a guest making its SSH host keys at first boot waits without it
        "-device", "virtio-rng-pci",
    ]
    if vm.kernel:
        argv += ["-kernel", vm.kernel]
        if vm.initramfs:
            argv += ["-initrd", vm.initramfs]
        argv += ["-append", vm.cmdline or "console=ttyS0"]
    elif vm.firmware:
        argv += ["-bios", vm.firmware]
    elif vm.disks and vm.disks[0].source and is_uefi_image(vm.disks[0].source):
        # OVMF: the code read-only, the variables (NVRAM) the VM's own copy
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={config.ovmf_code}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={Path(vm.dir) / 'OVMF_VARS.fd'}"]
    for index, disk in enumerate(vm.disks):
        drive = f"file={disk.path},if=virtio,format={disk.format},index={index}"
        if disk.readonly:
            drive += ",readonly=on"
        argv += ["-drive", drive]
    for attachment in attachments:
        argv += nic_args(attachment)
    return argv


def nic_args(attachment) -> list[str]:
    """``-netdev``/``-device`` for one attached NIC (tap by name, or an inherited fd)."""
    ident = f"net-{attachment.net}"
    if attachment.fds:
        netdev = f"tap,id={ident},fd={attachment.fds[0]}"
    else:
        netdev = f"tap,id={ident},ifname={attachment.ifname},script=no,downscript=no"
    device = f"virtio-net-pci,netdev={ident}"
    if attachment.mac:
        device += f",mac={attachment.mac}"
    if not attachment.offload:
        # the switch forwards frames as they are: the guest must checksum what it sends,
        # and gets full checksums on what it receives
        device += ",csum=off,guest_csum=off,gso=off"
    return ["-netdev", netdev, "-device", device]


def start(vm, attachments: list, config: QemuConfig, extra: tuple[str, ...] = ()) -> VmmHandle:
    """Start the VM's QEMU (``extra``: more arguments, e.g. to wait for a migration)."""
    binary = shutil.which(config.binary)
    if not binary:
        raise VirshleError(
            f"VM {vm.name!r}: {config.binary} is not installed",
            "Install the Debian package qemu-system-x86, or set [qemu] binary.",
            code="hypervisor_missing",
        )
    for label, path in (("kernel", vm.kernel), ("initramfs", vm.initramfs), ("firmware", vm.firmware)):
        if path and not Path(path).is_file():
            raise VirshleError(f"VM {vm.name!r}: {label} {path} is not a file",
                               "Fix the template's path in config.toml.", code="boot_file_missing")
    p = paths(vm)
    for key in ("pid", "qmp", "monitor", "console"):
        p[key].unlink(missing_ok=True)
    argv = [*build_argv(vm, attachments, config, binary, choose_accel(config)), *extra]
    if any(a.startswith("if=pflash") for a in argv):
        _ensure_uefi_files(vm, config)
    log_command(argv)
    inherited = [fd for a in attachments for fd in a.fds]
    proc = subprocess.run(argv, capture_output=True, text=True, pass_fds=inherited,
                          start_new_session=True, timeout=60)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise VirshleError(f"VM {vm.name!r}: QEMU did not start: {detail}",
                           "Run the daemon with -vvvv to see the QEMU command line.",
                           code="vmm_failed")
    pid = read_pid(vm)
    if pid is None:
        raise VirshleError(f"VM {vm.name!r}: QEMU started but wrote no pidfile", code="vmm_failed")
    return VmmHandle(pid=pid, hypervisor=NAME)


def _ensure_uefi_files(vm, config: QemuConfig) -> None:
    for path in (config.ovmf_code, config.ovmf_vars):
        if not Path(path).is_file():
            raise VirshleError(f"VM {vm.name!r}: its disk is a UEFI image but {path} is missing",
                               "Install the Debian package ovmf, or set [qemu] ovmf_code/ovmf_vars.",
                               code="firmware_missing")
    nvram = Path(vm.dir) / "OVMF_VARS.fd"
    if not nvram.exists():
        shutil.copyfile(config.ovmf_vars, nvram)
        os.chmod(nvram, 0o600)  # the guest's UEFI variables are its own


def read_pid(vm) -> int | None:
    return process.read_pid(paths(vm)["pid"])


def alive(pid: int, vm) -> bool:
    """The process exists and is this VM's QEMU (pids get reused); a zombie is reaped.
    Its pid file's path says which: two roots on one host may run the same uuid (a VM
    moving between them)."""
    return process.alive(pid, str(paths(vm)["pid"]).encode(), program=b"qemu")


NEGOTIATE_TRIES = 5


def qmp(vm, command: str, arguments: dict | None = None, timeout: float = 5.0) -> Any:
    """One QMP command through qemu.qmp, on the one-shot monitor; serialised per VM."""
    from qemu.qmp import QMPClient

    p = paths(vm)
    # a VM started before there were two monitors has only the daemon's
    socket_path = p["monitor"] if p["monitor"].exists() else p["qmp"]

    async def run() -> Any:
        from qemu.qmp import ConnectError

        client = QMPClient(vm.name)
        for attempt in range(NEGOTIATE_TRIES):
            try:
                await asyncio.wait_for(client.connect(str(socket_path)), timeout)
                break
            except ConnectError as exc:
                # QEMU resets a monitor after its last client left in its main loop: a
                # client that comes right after can meet the old session and fail to
                # negotiate (seen polling a migration every 50 ms); the next try is clean
                if "Negotiation failed" not in str(exc) or attempt == NEGOTIATE_TRIES - 1:
                    raise
                client = QMPClient(vm.name)
                await asyncio.sleep(0.02)
        try:
            return await asyncio.wait_for(client.execute(command, arguments), timeout)
        finally:
            try:
                await client.disconnect()
            except (EOFError, ConnectionError, OSError):
                pass  # "quit" closes the socket under us

    with _qmp_locks[vm.uuid]:
        return asyncio.run(run())


@contextlib.contextmanager
def session(vm):
    """A QMP connection held open on the one-shot monitor, for a few commands in quick
    succession (a migration's switch-over, where each new connection adds to the guest's
    downtime); ``qmp()`` for this VM waits until it ends."""
    from qemu.qmp.legacy import QEMUMonitorProtocol

    with _qmp_locks[vm.uuid]:
        monitor = QEMUMonitorProtocol(str(paths(vm)["monitor"]))
        monitor.connect()
        try:
            yield lambda command, arguments=None: monitor.cmd(command, **(arguments or {}))
        finally:
            try:
                monitor.close()
            except Exception:
                pass  # QEMU went away: nothing to close


def state(vm) -> str:
    pid = read_pid(vm)
    if pid is None:
        # no pidfile: QEMU exited cleanly (it removes it), or never ran
        return "created" if vm.state == "created" else "shutdown"
    if not alive(pid, vm):
        return "crashed"
    try:
        status = qmp(vm, "query-status")["status"]
    except Exception:
        return "running"  # alive but busy; the next reading will tell
    if status in ("running", "debug"):
        return "running"
    if status == "shutdown":  # the guest powered off; -no-shutdown keeps QEMU for us to end
        return "shutdown"
    if status in ("internal-error", "guest-panicked", "io-error"):
        return "crashed"
    return "paused"


def _finish(vm, pid: int, timeout: float = 5.0) -> None:
    try:
        qmp(vm, "quit")
    except Exception:
        pass
    if not _wait_gone(pid, vm, timeout):
        process.kill(pid)
        _wait_gone(pid, vm, 5)
    _clean(vm)


def _wait_gone(pid: int, vm, timeout: float) -> bool:
    return process.wait_gone(pid, lambda p: alive(p, vm), timeout)


def _clean(vm) -> None:
    p = paths(vm)
    for key in ("pid", "qmp", "monitor", "console"):
        p[key].unlink(missing_ok=True)


def processes(vm) -> list[int]:
    """This VM's QEMU processes, found by their command line (``-uuid`` and ``-pidfile``:
    the same uuid may run under another root of this host, a VM moving between them).

    A start cut short (the daemon died while QEMU daemonised) leaves a QEMU
    that has not written its pidfile yet; only its command line finds it.
    """
    marker = vm.uuid.encode()
    pidfile = str(paths(vm)["pid"]).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if b"qemu" in os.path.basename(argv[0]) and b"-uuid" in argv[:-1] \
                and argv[argv.index(b"-uuid") + 1] == marker and pidfile in argv:
            found.append(int(entry))
    return found


def stop(vm, force: bool, timeout: float) -> None:
    pid = read_pid(vm)
    if pid is None or not alive(pid, vm):
        for _round in range(3):  # a QEMU still daemonising forks once more: look again
            strays = processes(vm)
            if not strays:
                break
            for stray in strays:
                process.kill(stray)
            for stray in strays:
                _wait_gone(stray, vm, 5)
        _clean(vm)
        return
    if force:
        process.kill(pid)
        _wait_gone(pid, vm, 10)
        _clean(vm)
        return
    try:
        if qmp(vm, "query-status")["status"] == "paused":
            qmp(vm, "cont")  # a paused guest hears no power button
        qmp(vm, "system_powerdown")
    except Exception:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, vm):
            break
        try:
            if qmp(vm, "query-status")["status"] == "shutdown":
                break
        except Exception:
            pass
        time.sleep(0.2)
    _finish(vm, pid)
