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

import shutil
from pathlib import Path

from virshle_core import hookimpl
from virshle_core.vmm import VmmHooks

from .config import NAME, QemuConfig, choose_accel, config_of, cpu_has_virtualisation  # noqa: F401


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
    if vm.hypervisor != NAME or vm.kernel or vm.firmware or not vm.disks:
        return
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


# choosing, starting, stopping, states, watch and console: as every VMM plugin does them
# (virshle_core.vmm); with hypervisor = "auto", QEMU when cloud-hypervisor is not installed
_vmm = VmmHooks(NAME, __name__, config_of, auto="last")
virshle_hypervisor, virshle_start = _vmm.start_hooks()
virshle_stop, virshle_vm_state, virshle_vm_watch, virshle_console = _vmm.hooks()



@hookimpl
def virshle_vm_control(vm, action, force, node):
    if vm.hypervisor != NAME:
        return None
    from .control import control

    control(vm, action, force, timeout=float(node.config.host.stop_timeout))
    return True


@hookimpl
def virshle_snapshot(vm, action, snapshot, node):
    """A running (or paused) VM's snapshots, through QMP; a stopped VM's are the core's."""
    if vm.hypervisor != NAME or vm.state not in ("running", "paused"):
        return None
    from .control import snapshot as take

    take(vm, action, snapshot)
    return True


@hookimpl
def virshle_vm_stats(vm, node):
    if vm.hypervisor not in (None, "qemu"):
        return None
    from .control import stats

    return stats(vm)


@hookimpl
def virshle_migration_support(vm, node):
    return "" if vm.hypervisor == NAME else None


@hookimpl
def virshle_migration_receive(vm, attachments, node):
    if vm.hypervisor != NAME:
        return None
    from .migration import receive

    return receive(vm, attachments, config_of(node))


@hookimpl
def virshle_migration_send(vm, sockets, node):
    if vm.hypervisor != NAME:
        return None
    from .migration import send

    return send(vm, sockets)


@hookimpl
def virshle_migration_end(vm, side, outcome, node):
    if vm.hypervisor != NAME:
        return None
    from . import migration
    from .vmm import stop

    if (side, outcome) == ("target", "done"):
        migration.finish_target(vm)
    elif (side, outcome) == ("source", "abort"):
        migration.cancel(vm)
    else:  # the copy that no longer holds the guest
        stop(vm, force=True, timeout=5)
    return True
