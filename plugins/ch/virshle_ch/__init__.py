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


# choosing, starting, stopping, states, watch and console: as every VMM plugin does them
# (virshle_core.vmm); with hypervisor = "auto", cloud-hypervisor whenever it is installed
_vmm = VmmHooks(NAME, __name__, config_of, auto="first")
virshle_hypervisor, virshle_start = _vmm.start_hooks()
virshle_stop, virshle_vm_state, virshle_vm_watch, virshle_console = _vmm.hooks()


@hookimpl
def virshle_vm_control(vm, action, force, node):
    """``vm.pause``, ``vm.resume`` and ``vm.reboot``. cloud-hypervisor has no reboot that asks
    the guest: a reboot, forced or not, is its ``vm.reboot`` (a reset)."""
    if vm.hypervisor != NAME:
        return None
    from .api import ChApi
    from .vmm import paths

    api = ChApi(str(paths(vm)["api"]))
    {"pause": api.pause, "resume": api.resume, "reboot": api.reboot}[action]()
    return True


@hookimpl
def virshle_vm_stats(vm, node):
    if vm.hypervisor != "ch":
        return None
    from .vmm import stats

    return stats(vm)


@hookimpl
def virshle_migration_support(vm, node):
    """cloud-hypervisor's ``vm.send-migration`` and ``vm.receive-migration`` move memory and
    devices only: its disks must already be on both hosts (shared storage), which a node's
    own root is not. So a running VM moves cold."""
    if vm.hypervisor != NAME:
        return None
    return ("cloud-hypervisor moves a running guest's memory but not its local disks "
            "(vm.send-migration); stop the VM and migrate it stopped")
