"""The QEMU backend (``[qemu]``): QMP control, KVM only where the CPU really has it.

Each VM is one ``qemu-system-x86_64 -daemonize`` process in its own session,
so it outlives the node daemon. Everything it needs lives in the VM's
directory: ``vmm.pid``, ``qmp.sock`` (the daemon's QMP connection, held for
the VM's life by its watch, which hears QEMU's events), ``monitor.sock``
(a second QMP monitor for one-shot commands and operators), ``console.sock``
(the serial port) and ``console.log`` (everything the serial port printed,
kept by QEMU itself even while no daemon runs).

QEMU runs with ``-no-shutdown``: when the guest powers off, QEMU stays and
reports the ``shutdown`` status, so a power-off is told apart from a crash
even when the daemon was not watching; the plugin then ends the process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import attrs

from virshle_core import hookimpl
from virshle_core.config import field_check

ACCELS = ("auto", "kvm", "tcg")
NAME = "qemu"


@attrs.define
class QemuConfig:
    """``[qemu]``."""

    binary: str = "qemu-system-x86_64"
    accel: str = attrs.field(
        default="auto",
        validator=field_check(lambda v: None if v in ACCELS else f'must be one of {", ".join(ACCELS)}'))
    machine: str = "q35"
    ovmf_code: str = "/usr/share/OVMF/OVMF_CODE_4M.fd"
    ovmf_vars: str = "/usr/share/OVMF/OVMF_VARS_4M.fd"


def cpu_has_virtualisation(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU flags show vmx or svm (a nested PVM /dev/kvm shows neither)."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "vmx" in flags or "svm" in flags
    except OSError:
        return False
    return False


def choose_accel(config: QemuConfig) -> str:
    if config.accel != "auto":
        return config.accel
    usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
    return "kvm" if usable and cpu_has_virtualisation() else "tcg"


def config_of(node) -> QemuConfig:
    return node.section("qemu") or QemuConfig()


def is_mine(vm, node) -> bool:
    """A VM started by QEMU; before its first start, one the node would start on QEMU."""
    if vm.hypervisor:
        return vm.hypervisor == NAME
    return node.config.host.hypervisor in (NAME, "auto")


@hookimpl
def virshle_config_sections(register):
    register("qemu", QemuConfig)


@hookimpl
def virshle_node_info(node):
    config = config_of(node)
    return {"qemu": {"binary": shutil.which(config.binary), "accel": choose_accel(config)}}


@hookimpl
def virshle_pre_create(vm, template, node):
    """A UEFI OS disk needs OVMF: refuse at create, naming the package, rather than at start."""
    if not is_mine(vm, node) or vm.kernel or vm.firmware or not vm.disks:
        return
    if node.config.host.hypervisor == "auto" and shutil.which("cloud-hypervisor"):
        return  # cloud-hypervisor will boot it, with its own firmware
    from .vmm import is_uefi_image

    config = config_of(node)
    if is_uefi_image(vm.disks[0].source or ""):
        for path in (config.ovmf_code, config.ovmf_vars):
            if not Path(path).is_file():
                from virshle_core import UsageError

                raise UsageError(
                    f"template {template.name!r}: disk {vm.disks[0].name!r} is a UEFI image, "
                    f"and its firmware {path} is missing",
                    "Install the Debian package ovmf, or set [qemu] ovmf_code and ovmf_vars.",
                    code="firmware_missing")


@hookimpl(trylast=True)  # with hypervisor = "auto", cloud-hypervisor goes first when installed
def virshle_start(vm, attachments, node):
    if vm.hypervisor not in (None, NAME) or node.config.host.hypervisor not in (NAME, "auto"):
        return None
    from .vmm import start

    return start(vm, attachments, config_of(node))


@hookimpl
def virshle_stop(vm, force, node):
    if not (vm.hypervisor == NAME):
        return None
    from .vmm import stop

    stop(vm, force, timeout=float(node.config.host.stop_timeout))
    return True


@hookimpl
def virshle_vm_state(vm, node):
    if vm.hypervisor != NAME:
        return None
    from .vmm import state

    return state(vm)


@hookimpl
def virshle_vm_watch(vm, node):
    if vm.hypervisor != NAME:
        return None
    from .watch import watch

    return watch(vm)


@hookimpl
def virshle_console(vm, node):
    if vm.hypervisor != NAME:
        return None
    from virshle_core.models import ConsoleEndpoint

    return ConsoleEndpoint(socket=str(Path(vm.dir) / "console.sock"),
                           log=str(Path(vm.dir) / "console.log"))

