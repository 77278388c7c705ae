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

from virshle_core import hookimpl
from virshle_core.vmm import VmmHooks

from .config import NAME, ChConfig, config_of  # noqa: F401


@hookimpl
def virshle_config_sections(register):
    register("ch", ChConfig)


@hookimpl
def virshle_node_info(node):
    config = config_of(node)
    return {"ch": {"binary": shutil.which(config.binary)}}


@hookimpl(tryfirst=True)  # with hypervisor = "auto", cloud-hypervisor when it is installed
def virshle_hypervisor(wanted, node):
    if wanted == NAME or (wanted == "auto" and shutil.which(config_of(node).binary)):
        return NAME
    return None


@hookimpl
def virshle_start(vm, attachments, node):
    if vm.hypervisor != NAME:
        return None
    from .vmm import start

    return start(vm, attachments, config_of(node))


# stop, state, watch and console: as every VMM plugin does them (virshle_core.vmm)
virshle_stop, virshle_vm_state, virshle_vm_watch, virshle_console = VmmHooks(NAME, __name__).hooks()
