"""A VM's disks once it exists: snapshots and growth, journaled as a create is, and what a
restart checks of them.

Each verb writes its journal entry on the VM's row first (``snapshotting:NAME``,
``restoring:NAME``, ``unsnapshotting:NAME``, ``resizing``), then changes the files, then
records what they hold and clears the entry. A daemon that dies in between finds the entry
at its next start, and ``settle`` makes the store say what the files hold: each disk's
real format and size (``qemu-img info``), snapshot rows against the snapshots each disk
really holds (a row nothing holds goes; a snapshot no row names goes; a create cut short
is rolled back and a delete finished), and leaked clusters repaired (``qemu-img check``).
"""

from __future__ import annotations

import shutil

from . import admission
from .. import events
from ..wire.api import DiskResize, Snapshot, SnapshotRequest
from ..errors import Conflict, NotFound, UsageError, VirshleError
from ..host.images import mark_for_check, repair_leaks
from .lifecycle import end_vmm, live_state
from ..log import logger
from ..models import NodeContext, Vm
from ..hooks import plugins
from ..units import MAX_SIZE, human_size

ACTIVE = ("running", "paused")
SNAPSHOT_NAME_CHARS = "letters, digits, '.', '_' or '-'"
MEMORY_MARGIN = 64 * 1024**2
"""Room left on the root's filesystem beyond a memory snapshot's size (the store, logs)."""


def check_snapshot_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise UsageError(f"{name!r} is not a snapshot name",
                         f"Use up to 64 {SNAPSHOT_NAME_CHARS}, starting with a letter or digit.",
                         code="bad_name")
    if name.isdigit():
        raise UsageError(f"{name!r} is not a snapshot name: a snapshot name may not be all digits "
                         "(QEMU reads it as a snapshot's number)",
                         "Add a letter: snap-1, v2.", code="bad_name")


def refuse_active(node: NodeContext, vm: Vm, done: str, why: str) -> None:
    state = live_state(node, vm)
    if state in ACTIVE:
        raise Conflict(f"VM {vm.name!r} is {state}: it can only be {done} while stopped",
                       f"Stop it first with `virshle vm stop {vm.name}`. {why}",
                       code="vm_running")


def admit(node: NodeContext, need: admission.Need, what: str, runs: bool = False):
    """The admission check of ``need`` against the node's limits, for the store's write
    (``runs``: see ``admission.check``)."""
    capacity = admission.Capacity.of_host(str(node.root))

    def check(totals: dict[str, int]) -> None:
        admission.check(node.name, node.config.host.limits, capacity, totals, need, what, runs)

    return check


class journal:
    """``with journal(node, vm, "resizing"):`` writes the entry, and clears it when the
    work is done or undone; an error leaves it only when the daemon dies (reconcile's)."""

    def __init__(self, node: NodeContext, vm: Vm, entry: str):
        self.node, self.vm, self.entry = node, vm, entry

    def __enter__(self) -> None:
        self.node.store.mark(self.vm, self.entry)

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:  # qemu-img may have been cut short (a full disk): check them later
            mark_for_check(self.vm)
        self.node.store.mark(self.vm, None)


# --- growth --------------------------------------------------------------------------------


def disk_resize(node: NodeContext, vm: Vm, disk_name: str, size: int | None = None,
                grow: int | None = None) -> Vm:
    """Grow one writable disk of a stopped VM to ``size`` bytes, or by ``grow`` bytes."""
    disk = next((d for d in vm.disks if d.name == disk_name), None)
    if disk is None:
        raise NotFound(f"VM {vm.name!r} has no disk {disk_name!r}",
                       "Its disks: " + ", ".join(d.name for d in vm.disks) + ".",
                       code="disk_not_found")
    if disk.readonly:
        raise UsageError(f"VM {vm.name!r}: disk {disk_name!r} is read-only; it is never resized",
                         code="bad_size")
    if (size is None) == (grow is None):
        raise UsageError("say the disk's new size, or how much to add (one of size, grow)",
                         code="bad_size")
    old = disk.size or 0
    new = size if size is not None else old + grow
    if new > MAX_SIZE:
        raise UsageError(f"VM {vm.name!r}: disk {disk_name!r} cannot be {human_size(new)}: at "
                         f"most {human_size(MAX_SIZE)}", code="bad_size")
    if new <= old:
        raise UsageError(f"VM {vm.name!r}: disk {disk_name!r} is {human_size(old)}; disks only "
                         f"grow, and {human_size(new)} is not more",
                         "Give a bigger size, or +SIZE to add.", code="bad_size")
    refuse_active(node, vm, "resized", "Its disk can grow while it is stopped.")
    need = admission.Need(vcpu=0, vram=0, disk=new - old)
    with journal(node, vm, "resizing"):
        disk.size = new  # reserved first, in the admitting transaction; given back on failure
        try:
            node.store.update_admitted(vm, admit(node, need, f"disk {disk_name!r} of VM "
                                                 f"{vm.name!r} at {human_size(new)}"))
        except BaseException:
            disk.size = old
            raise
        try:
            if plugins().disk_resize(vm=vm, disk=disk, size=new, node=node) is None:
                raise VirshleError(f"VM {vm.name!r}: no plugin could resize disk {disk_name!r}")
        except BaseException:
            _read_sizes(vm)  # what the file is now, whatever the failure left
            node.store.update(vm)
            raise
    events.emit(events.VM_RESIZED, node.name, vm=vm.to_json(),
                what=f"disk {disk_name} {human_size(old)} -> {human_size(new)}")
    return vm


def resize_disk(node: NodeContext, vm: Vm, request: DiskResize, disk: str) -> Vm:
    """``POST /vms/{ref}/disks/{disk}/resize``."""
    return disk_resize(node, vm, disk, request.size, request.grow)


# --- snapshots -------------------------------------------------------------------------------


def snapshots(node: NodeContext, vm: Vm) -> list[Snapshot]:
    return node.store.snapshots(vm)


def take_snapshot(node: NodeContext, vm: Vm, request: SnapshotRequest) -> Snapshot:
    """``POST /vms/{ref}/snapshots``."""
    return snapshot_create(node, vm, request.name, request.memory)



def snapshot_create(node: NodeContext, vm: Vm, name: str, memory: bool = False) -> Snapshot:
    """Take snapshot ``name`` of the VM's writable disks (and, ``memory``, of the running
    guest); it reserves its disks' sizes (and the VM's memory) against the limits."""
    from ..host.images import check_snapshot_disks, overlay_on_itself, snapshot_disks

    check_snapshot_name(name)
    state = live_state(node, vm)
    vm.state = state
    if memory and state not in ACTIVE:
        raise UsageError(f"VM {vm.name!r} is {state}: only a running VM has memory to keep",
                         "Leave out --memory: a stopped VM's snapshot is its disks.",
                         code="vm_not_running")
    if memory:
        _check_room_for_memory(node, vm)
    with journal(node, vm, f"snapshotting:{name}"):
        if state not in ACTIVE:  # a raw disk is kept as it is, under an overlay that holds them
            for disk in snapshot_disks(vm):
                if disk.format == "raw":
                    overlay_on_itself(disk)
                    node.store.update(vm)
        disks = check_snapshot_disks(vm)  # qcow2 each, whoever takes the snapshot
        if not disks:
            raise UsageError(f"VM {vm.name!r} has no writable disk to snapshot", code="not_supported")
        size = sum(d.size or 0 for d in disks) + (vm.vram if memory else 0)
        snapshot = Snapshot(name=name, vm=vm.name, memory=memory, state=state, size=size,
                            vcpu=vm.vcpu, vram=vm.vram)
        need = admission.Need(vcpu=0, vram=0, disk=size)
        node.store.add_snapshot(vm, snapshot, admit=admit(node, need, f"snapshot {name!r} of VM "
                                                          f"{vm.name!r}"))
        try:
            _snapshot_hook(node, vm, "create", snapshot)
        except BaseException:
            node.store.remove_snapshot(vm, name)
            _after_a_failure(node, vm, state)
            if live_state(node, vm) not in ACTIVE:  # a killed qemu-img may have made it anyway
                try:
                    for line in settle(node, vm):
                        logger.warning("{}", line)
                except Exception as exc:
                    logger.warning("VM {}: checking its disks after a failed snapshot: {}",
                                   vm.name, exc)
            raise
    events.emit(events.SNAPSHOT_CREATED, node.name, vm=vm.to_json(), snapshot=snapshot.to_json())
    return snapshot


def snapshot_restore(node: NodeContext, vm: Vm, snapshot: str) -> Vm:
    """Bring the VM's disks back to ``snapshot`` (a stopped VM), or, for a snapshot
    with memory, the running guest too; the disks' sizes are read again (a disk grown since
    the snapshot is back to its old size)."""
    name = snapshot
    snapshot = node.store.snapshot(vm, name)
    state = live_state(node, vm)
    vm.state = state
    if state in ACTIVE and not snapshot.memory:
        raise Conflict(f"VM {vm.name!r} is {state}, and snapshot {name!r} holds its disks alone: "
                       "they are restored while it is stopped",
                       f"Stop it with `virshle vm stop {vm.name}`, then restore.",
                       code="vm_running")
    if state in ACTIVE and snapshot.vram and (snapshot.vcpu, snapshot.vram) != (vm.vcpu, vm.vram):
        raise Conflict(
            f"VM {vm.name!r} runs with {_shape(vm.vcpu, vm.vram)}, and snapshot {name!r} holds "
            f"the memory of {_shape(snapshot.vcpu, snapshot.vram)}: it cannot be restored into it",
            f"Stop it, set it back (`virshle vm set {vm.name} vcpu={snapshot.vcpu} "
            f"vram={human_size(snapshot.vram)}`) and start it; or restore its disks alone while "
            "it is stopped.", code="snapshot_shape")
    with journal(node, vm, f"restoring:{name}"):
        try:
            _snapshot_hook(node, vm, "restore", snapshot)
        except VirshleError as exc:
            if state in ACTIVE:  # QEMU may have reverted part of it: never leave that running
                _stop_half_restored(node, vm, name, exc)
            raise
        finally:
            _read_sizes(vm)
            node.store.update(vm)
        if state in ACTIVE:
            node.store.update(vm, state=live_state(node, vm))
        else:  # `qemu-img snapshot -a` over a state a savevm wrote leaks clusters (seen)
            repair_leaks(vm)
    events.emit(events.SNAPSHOT_RESTORED, node.name, vm=vm.to_json(), snapshot=snapshot.to_json())
    return vm


def snapshot_delete(node: NodeContext, vm: Vm, snapshot: str) -> Snapshot:
    name = snapshot
    snapshot = node.store.snapshot(vm, name)
    vm.state = live_state(node, vm)
    with journal(node, vm, f"unsnapshotting:{name}"):
        _snapshot_hook(node, vm, "delete", snapshot)
        node.store.remove_snapshot(vm, name)
        if vm.state not in ACTIVE:
            repair_leaks(vm)
    events.emit(events.SNAPSHOT_DELETED, node.name, vm=vm.to_json(), snapshot=snapshot.to_json())
    return snapshot


def _snapshot_hook(node: NodeContext, vm: Vm, action: str, snapshot: Snapshot) -> None:
    if not plugins().snapshot(vm=vm, action=action, snapshot=snapshot, node=node):
        raise Conflict(f"VM {vm.name!r} is {vm.state}, and its hypervisor ({vm.hypervisor}) "
                       "cannot snapshot a running VM",
                       f"Stop it first with `virshle vm stop {vm.name}`.", code="not_supported")


def _shape(vcpu: int | None, vram: int | None) -> str:
    return f"{vcpu} vcpu and {human_size(vram)}"


def _check_room_for_memory(node: NodeContext, vm: Vm) -> None:
    """A memory snapshot writes the guest's memory into its first disk: refuse it when the
    root's filesystem has not that much free (it once filled the disk, and then nothing could
    be recorded, not even a stop)."""
    free = shutil.disk_usage(node.root).free
    if free < vm.vram + MEMORY_MARGIN:
        raise Conflict(f"node {node.name!r} has {human_size(free)} free under its root, and a "
                       f"snapshot of VM {vm.name!r} with its memory needs about "
                       f"{human_size(vm.vram + MEMORY_MARGIN)}",
                       "Free some room, or leave out --memory (a snapshot of the disks alone "
                       "grows only with what the guest writes).", code="no_space")


def _after_a_failure(node: NodeContext, vm: Vm, state: str) -> None:
    """A snapshot that failed on a running VM may have lost it (its QEMU killed in the
    middle): record what is left, and repair what a cut-short savevm leaked."""
    if state not in ACTIVE:
        return
    live = live_state(node, vm)
    if live in ACTIVE:
        return
    end_vmm(node, vm)  # which repairs what the cut-short savevm leaked
    node.store.update(vm, state="crashed" if live == "crashed" else "shutdown")


def _stop_half_restored(node: NodeContext, vm: Vm, name: str, exc: VirshleError) -> None:
    try:
        plugins().stop(vm=vm, force=True, node=node)
    except Exception as stop_error:
        logger.error("VM {}: stopping it after a failed restore failed: {}", vm.name, stop_error)
    end_vmm(node, vm)
    node.store.update(vm, state="shutdown")
    exc.message = (f"{exc.message}; QEMU may have restored part of snapshot {name!r}, so VM "
                   f"{vm.name!r} was stopped")
    exc.hint = (f"Restore it again while it is stopped (`virshle vm snapshot restore {vm.name} "
                f"{name}`: its disks), then start it.")
    exc.args = (exc.message,)


# --- what a restart checks ------------------------------------------------------------------


def _read_sizes(vm: Vm) -> None:
    """Each writable disk's real format and size, from the file (``qemu-img info``)."""
    from ..host.images import disk_info, snapshot_disks

    for disk in snapshot_disks(vm):
        try:
            info = disk_info(disk.path)
        except VirshleError as exc:
            logger.warning("VM {}: {}", vm.name, exc.message)
            continue
        disk.size = info.get("virtual-size", disk.size)
        if info.get("format") and info["format"] != disk.format:
            logger.warning("disk {!r} of VM {!r} is {}, not {} as recorded", disk.name, vm.name,
                           info["format"], disk.format)
            disk.format = info["format"]


def settle(node: NodeContext, vm: Vm) -> list[str]:
    """After a crash in a journaled verb: make the store say what the files hold. Returns
    one line per change, for the daemon's log."""
    from ..host.images import internal_snapshots, qemu_img, snapshot_disks

    said: list[str] = []
    entry = vm.pending or ""
    verb, _, name = entry.partition(":")
    label = f"VM {vm.name!r}"
    before = {d.name: (d.format, d.size) for d in vm.disks}
    _read_sizes(vm)
    for disk in vm.disks:
        if before.get(disk.name) != (disk.format, disk.size):
            said.append(f"disk {disk.name!r} of {label} is {disk.format}, {human_size(disk.size)}"
                        f" (the store said {before[disk.name][0]}, {human_size(before[disk.name][1])})")
    running = live_state(node, vm) in ACTIVE
    held = {disk.name: internal_snapshots(disk.path) for disk in snapshot_disks(vm)
            if disk.format == "qcow2"}
    rows = {snapshot.name for snapshot in node.store.snapshots(vm)}
    for row in sorted(rows):
        on = [disk for disk, names in held.items() if row in names]
        finished_delete = verb == "unsnapshotting" and row == name
        if on and (len(on) == len(held) and not finished_delete):
            continue
        if on and running:
            continue  # QEMU has the files: a running VM's snapshot stays as it is
        for disk in snapshot_disks(vm):
            if disk.name in on:
                qemu_img("snapshot", "-d", row, disk.path, what=f"{label}: dropping {row!r}")
        node.store.remove_snapshot(vm, row)
        said.append(f"removed the row of snapshot {row!r} of {label}: "
                    + ("its delete was finished" if finished_delete else
                       "no disk holds it" if not on else "only some of its disks held it"))
    rows = {snapshot.name for snapshot in node.store.snapshots(vm)}
    if verb == "restoring" and name in rows and not running:  # finish it on every disk
        for disk in snapshot_disks(vm):
            qemu_img("snapshot", "-a", held[disk.name][name], disk.path,
                     what=f"{label}: restoring {name!r}")
        _read_sizes(vm)
        said.append(f"finished restoring snapshot {name!r} of {label}")
    if not running:
        for disk in snapshot_disks(vm):
            for stray in sorted(set(held.get(disk.name, {})) - rows):
                qemu_img("snapshot", "-d", stray, disk.path, what=f"{label}: dropping {stray!r}")
                said.append(f"dropped snapshot {stray!r} of disk {disk.name!r} of {label}: no row "
                            "names it")
        for disk_name in repair_leaks(vm):
            logger.debug("{}: disk {} checked", label, disk_name)
    node.store.update(vm, pending=None)
    return said
