"""Hooks on a VM's disks once it exists: snapshots, growing, copying for a clone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .marker import hookspec

if TYPE_CHECKING:
    from ..wire.api import Snapshot
    from ..models import ClonedDisk, Disk, NodeContext, Vm


@hookspec(firstresult=True)
def virshle_snapshot(vm: Vm, action: str, snapshot: Snapshot, node: NodeContext) -> bool | None:
    """Take, restore or delete a snapshot of a VM's writable disks (and its memory).

    The core records snapshots (their names, what they reserve against
    ``[host.limits] disk``) and asks this hook to do the work. The core's own
    implementation (``trylast``) handles a VM that is not running: a qcow2
    internal snapshot in each writable disk, with ``qemu-img snapshot``. A
    hypervisor plugin answers for the VMs it runs: QEMU takes the disks of a
    running VM, and with ``snapshot.memory`` its memory and devices too, in
    the disks themselves (QMP); restoring those brings the guest back where it
    was. Read-only disks (the cloud-init seed) are never part of a snapshot.
    Every writable disk is qcow2 when this is called: the core puts a raw disk
    under a qcow2 overlay (its file kept as the backing file) at its first
    snapshot, taken while the VM is stopped.

    Stops at first non-None result.

    :param vm: the VM; its ``state`` is what the node recorded.
    :param action: ``create``, ``restore`` or ``delete``.
    :param snapshot: the snapshot (``name``, ``memory``).
    :param node: the local node.
    :returns: True once done; None to let another plugin answer (not your VM,
        or a state you do not handle). Raise ``VirshleError`` to refuse; a
        ``create`` that fails must leave no snapshot behind.

    Example::

        @hookimpl
        def virshle_snapshot(vm, action, snapshot):
            if vm.hypervisor != "myvmm" or vm.state != "running":
                return None
            api(vm).put("vm.snapshot", {"destination_url": f"file://{vm.dir}/{snapshot.name}"})
            return True
    """


@hookspec(firstresult=True)
def virshle_disk_resize(vm: Vm, disk: Disk, size: int, node: NodeContext) -> int | None:
    """Grow one disk of a stopped VM to ``size`` bytes (the guest sees a bigger disk at its
    next boot; growing its partitions and filesystems is the guest's work, cloud-init's
    ``growpart`` by default).

    The core checks that the VM is stopped, that the disk is writable and grows,
    and that the node's ``[host.limits] disk`` has room. Its own implementation
    (``trylast``) runs ``qemu-img resize``.

    Stops at first non-None result.

    :param vm: the VM.
    :param disk: the disk to grow (``disk.path``, ``disk.format``).
    :param size: the new size in bytes.
    :param node: the local node.
    :returns: the disk's new size in bytes; None to let another plugin answer.

    Example::

        @hookimpl
        def virshle_disk_resize(disk, size):
            subprocess.run(["zfs", "set", f"volsize={size}", zvol_of(disk)], check=True)
            return size
    """


@hookspec(firstresult=True)
def virshle_disk_copy(vm: Vm, disk: Disk, dest: str, node: NodeContext) -> ClonedDisk | None:
    """Copy one writable disk of a stopped VM to ``dest``, for a clone.

    The source must not change. The core's own implementation (``trylast``)
    copies a qcow2 overlay as a new overlay on the same cached image (only
    what the VM wrote is copied; its internal snapshots are dropped from the
    copy), and anything else in full, with progress (``virshle_core.progress``).

    Stops at first non-None result.

    :param vm: the VM cloned.
    :param disk: its disk.
    :param dest: the path to create (its directory exists).
    :param node: the local node.
    :returns: the copy's ``ClonedDisk(format, size)``; None to let another plugin copy it.

    Example::

        @hookimpl
        def virshle_disk_copy(disk, dest):
            subprocess.run(["cp", "--reflink=always", disk.path, dest], check=True)
            return ClonedDisk(format=disk.format, size=disk.size)
    """
