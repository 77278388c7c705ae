"""The cloud-hypervisor backend (``[ch]``): its REST API on a unix socket.

Each VM is one ``cloud-hypervisor --api-socket`` process in its own session
(it outlives the node daemon), driven with ``vm.create`` and ``vm.boot``.
Its files live in the VM's directory: ``vmm.pid``, ``ch.sock`` (the API),
``ch-events.json`` (its event monitor), ``serial.sock`` (cloud-hypervisor's
serial port), and — through a small console keeper process that also
outlives the daemon — ``console.sock`` and ``console.log``.

With ``[host] hypervisor = "auto"`` this plugin starts VMs whenever the
``cloud-hypervisor`` binary is installed; otherwise QEMU does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from virshle_core import hookimpl

from .config import NAME, ChConfig, config_of  # noqa: F401


@hookimpl
def virshle_config_sections(register):
    register("ch", ChConfig)


@hookimpl
def virshle_node_info(node):
    config = config_of(node)
    return {"ch": {"binary": shutil.which(config.binary)}}


@hookimpl
def virshle_start(vm, attachments, node):
    wanted = vm.hypervisor or node.config.host.hypervisor
    config = config_of(node)
    if wanted == "auto":
        if not shutil.which(config.binary):
            return None  # not installed: another hypervisor plugin starts it
    elif wanted != NAME:
        return None
    from .vmm import start

    return start(vm, attachments, config)


@hookimpl
def virshle_stop(vm, force, node):
    if vm.hypervisor != NAME:
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
