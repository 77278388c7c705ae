"""A VM moving to another node: each node's part, journaled (docs/architecture.md, "Moving
a VM between nodes").

The shape is libvirt's. The source *begins* (checks the VM, journals
``migrating:<id>:<target>``, describes the VM: its row, snapshots, files and base
images); the target *accepts* (admits it against its limits and records it unlisted,
``incoming:<id>:<source>``); the files, or for a running VM its disks and memory, go
from one to the other (``host/transfer.py``, the hypervisor's hooks); the source records
that it *performed* its part (``migrated:<id>:<target>``); the target *finishes* (it
owns the VM: listed, resumed); the source *confirms* (it lets everything go).

The switch of owner is the target's finish. A daemon that restarts rolls its side back
when the move had not got that far on it: an unfinished incoming VM goes, a source that
had not performed keeps its VM (a running guest runs on). A source that had performed
cannot know alone whether the target finished: it keeps the VM, paused and unlisted as
its own (``moving_to`` says where), until a command line that reaches both settles it
(``client/migrate.py``): forward when the target finished, back when it had not.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .. import events
from ..errors import Conflict, UsageError, VirshleError
from ..hooks import plugins
from ..host.images import image_format, qemu_img
from ..log import logger
from ..models import NodeContext, Vm
from ..store.rows import now, row_of, vm_of
from ..wire import api
from . import admission
from .lifecycle import VM_DIR_MODE, attach_all, close_descriptors, detach_all, live_state
from .movefiles import base_of, blank_disk, cached_base, vm_files
from .undo import Undo

STOPPED = ("created", "shutdown", "crashed")


# --- the source ----------------------------------------------------------------------


def begin(node: NodeContext, vm: Vm, request: api.MigrateRequest) -> api.MoveOffer:
    """Check that ``vm`` can move, journal it, and describe it for the target."""
    if request.to == node.id:
        raise UsageError(f"VM {vm.name!r} is on node {request.to_name or request.to!r} already",
                         "Choose another node with --to.", code="same_node")
    if vm.pending:
        raise busy(vm)
    state = live_state(node, vm)
    if request.live:
        if state not in ("running", "paused"):
            raise Conflict(f"VM {vm.name!r} is {state}: --live moves a running VM",
                           f"Migrate it without --live: `virshle vm migrate {vm.name} --to "
                           f"{request.to_name}` moves its files.", code="vm_not_running")
        reason = plugins().migration_support(vm=vm, node=node)
        if reason is None or reason:
            raise Conflict(f"VM {vm.name!r} cannot move while it runs: "
                           f"{reason or f'its hypervisor {vm.hypervisor!r} cannot migrate it live'}",
                           f"Stop it (`virshle vm stop {vm.name}`) and migrate it without --live.",
                           code="not_supported")
        if node.store.snapshots(vm):
            raise Conflict(f"VM {vm.name!r} has snapshots, and a live migration does not carry "
                           "them (they are inside its disks, copied block by block)",
                           f"Migrate it stopped (they move then), or remove them with "
                           f"`virshle vm snapshot rm {vm.name} NAME`.", code="not_supported")
    elif state not in STOPPED:
        raise Conflict(f"VM {vm.name!r} is {state}", f"Stop it first, or move it running "
                       f"with `virshle vm migrate {vm.name} --to {request.to_name} --live`.",
                       code="vm_running")
    vm.state = state
    offer = describe(node, vm, request)
    node.store.add_move(api.Move(id=request.id, vm_uuid=vm.uuid, side="source", peer=request.to,
                                 peer_name=request.to_name, live=request.live, phase="begun",
                                 started_at=now()))
    node.store.update(vm, state=state, pending=f"migrating:{request.id}:{request.to_name}")
    return offer


def describe(node: NodeContext, vm: Vm, request: api.MigrateRequest) -> api.MoveOffer:
    """The offer: the VM's row, its snapshots, its files (an overlay naming its base image)
    and those images."""
    files, bases = vm_files(vm)
    row = row_of(vm, vm.updated_at or now())
    row.update(created_at=vm.created_at, state=vm.state, pending=None)
    return api.MoveOffer(id=request.id, source=node.id, source_name=node.name,
                         target_name=request.to_name, live=request.live, vm=row,
                         source_dir=str(vm.path),
                         snapshots=[s.to_json() for s in node.store.snapshots(vm)],
                         files=files, bases=[base for base, _ in bases.values()])


def performed(node: NodeContext, vm: Vm) -> Vm:
    """The target holds everything: from now on only a command line that reaches both nodes
    may take the VM back here."""
    move = _move_of(node, vm)
    node.store.set_move_phase(move.id, "performed")
    return node.store.mark(vm, f"migrated:{move.id}:{move.peer_name}")


def confirm(node: NodeContext, vm: Vm, move_id: str) -> Vm:
    """The target owns the VM: let everything go here (its NICs' MACs and leases go with it)."""
    move = _move_of(node, vm, move_id)
    if move.live:
        plugins().migration_end(vm=vm, side="source", outcome="done", node=node)
        detach_all(node, vm)
    shutil.rmtree(vm.path, ignore_errors=True)
    node.store.delete(vm)
    node.store.end_move(move.id)
    events.emit(events.VM_MIGRATED, node.name, vm=vm.to_json(), side="source",
                source=node.name, target=move.peer_name, live=move.live)
    return vm


def abort_source(node: NodeContext, vm: Vm, move_id: str | None = None) -> Vm:
    """The move is off: the VM stays here, as it was (a running guest runs on)."""
    move = _move_of(node, vm, move_id)
    if move.live and plugins().migration_end(vm=vm, side="source", outcome="abort", node=node) is None:
        logger.warning("VM {}: no plugin ended its migration", vm.name)
    node.store.end_move(move.id)
    node.store.mark(vm, None)
    return vm


# --- the target ----------------------------------------------------------------------


def accept(node: NodeContext, offer: api.MoveOffer) -> tuple[Vm, api.MovePlan]:
    """Take the offered VM: checked, admitted and journaled (not listed until it finishes)."""
    if offer.source == node.id:
        raise UsageError(f"node {node.name!r} is where the VM is already",
                         "Choose another node with --to.", code="same_node")
    vm = vm_of({**offer.vm, "id": None}, node.name, str(node.root / "vm"))  # the store gives ids
    vm.pending = f"incoming:{offer.id}:{offer.source_name}"
    for disk in vm.disks:  # under this node's root
        if disk.path.startswith(offer.source_dir + "/"):
            disk.path = vm.dir + disk.path[len(offer.source_dir):]
    _check_can_run(node, vm, offer.live)
    stale = _incoming(node, vm.uuid)
    if stale is not None:  # an earlier move of it that never finished (its source began again)
        rollback(node, stale)
    need = admission.Need(vcpu=vm.vcpu, vram=vm.vram, disk=sum(d.size or 0 for d in vm.disks)
                          + sum(s.get("size") or 0 for s in offer.snapshots))
    capacity = admission.Capacity.of_host(str(node.root))
    node.store.insert_many([vm], admit=lambda totals: admission.check(
        node.name, node.config.host.limits, capacity, totals, need, f"VM {vm.name!r}",
        runs=offer.live))
    try:
        for snapshot in offer.snapshots:
            node.store.add_snapshot(vm, api.Snapshot.from_json(snapshot))
        vm.path.mkdir(mode=VM_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(vm.path, VM_DIR_MODE)
        node.store.add_move(api.Move(id=offer.id, vm_uuid=vm.uuid, side="target",
                                     peer=offer.source, peer_name=offer.source_name,
                                     live=offer.live, phase="accepted", started_at=now()))
    except BaseException:
        rollback(node, vm)
        raise
    missing = [base.digest for base in offer.bases if cached_base(node, base.digest) is None]
    return vm, api.MovePlan(id=offer.id, missing=missing)


def _check_can_run(node: NodeContext, vm: Vm, live: bool) -> None:
    from ..hooks import hypervisor_names

    if vm.hypervisor and vm.hypervisor not in hypervisor_names():
        raise Conflict(f"node {node.name!r} has no hypervisor {vm.hypervisor!r} for VM {vm.name!r}"
                       f" (it has: {', '.join(hypervisor_names()) or 'none'})",
                       "Install its plugin there, or choose another node.", code="no_hypervisor")
    for what, path in (("kernel", vm.kernel), ("initramfs", vm.initramfs), ("firmware", vm.firmware)):
        if path and not Path(path).is_file():
            raise Conflict(f"node {node.name!r} lacks the {what} of VM {vm.name!r}: {path}",
                           "Put the same file there (a template's boot files are the node's).",
                           code="boot_file_missing")
    manager = plugins()
    if set(manager.implementers("net_attach")) <= set(manager.implementers("net_types")):
        known = manager.net_types(node=node)
        for net in vm.nets:
            if net.type not in known:
                raise Conflict(f"node {node.name!r} cannot attach net {net.name!r} of VM "
                               f"{vm.name!r}: no plugin there attaches net type {net.type!r} "
                               f"(it has: {', '.join(sorted(known)) or 'none'})",
                               "Install the plugin there, or choose another node.",
                               code="unknown_net_type")
    if live:
        reason = manager.migration_support(vm=vm, node=node)
        if reason is None or reason:
            raise Conflict(f"node {node.name!r} cannot take VM {vm.name!r} while it runs: "
                           f"{reason or 'its hypervisor cannot receive it live'}",
                           "Stop the VM and migrate it without --live.", code="not_supported")


def start_receiving(node: NodeContext, vm: Vm, offer: api.MoveOffer) -> dict[str, str]:
    """A running VM's target: its writable disks made empty (or overlays on the same base),
    its NICs attached, its VMM waiting; the hypervisor's socket of each stream."""
    undo = Undo()
    attachments: list = []
    try:
        for disk in (d for d in vm.disks if not d.readonly):
            blank_disk(node, disk, base_of(node, offer, disk))
            undo.push(f"disk {disk.name}", lambda d=disk: Path(d.path).unlink(missing_ok=True))
        attachments = attach_all(node, vm, undo)
        sockets = plugins().migration_receive(vm=vm, attachments=attachments, node=node)
        if sockets is None:
            raise VirshleError(f"VM {vm.name!r}: no plugin of node {node.name!r} can receive it "
                               f"(hypervisor {vm.hypervisor!r})", code="no_hypervisor")
    except BaseException:
        undo.run()
        raise
    finally:
        close_descriptors(attachments)
    return sockets


def finish(node: NodeContext, vm: Vm, offer: api.MoveOffer) -> Vm:
    """The VM is this node's: its overlays on this node's images, listed, (running) resumed."""
    for disk in vm.disks:
        base = base_of(node, offer, disk)
        if base is not None and not offer.live:
            qemu_img("rebase", "-u", "-F", image_format(base), "-b", str(base), disk.path,
                     what=f"VM {vm.name!r}: pointing disk {disk.name!r} at its base image")
        disk.source = str(base) if base is not None else disk.path
    if offer.live:
        plugins().migration_end(vm=vm, side="target", outcome="done", node=node)
    state = "running" if offer.live else ("created" if vm.state == "created" else "shutdown")
    node.store.update(vm, state=state, disks=vm.disks, pending=None)
    node.store.end_move(offer.id)
    events.emit(events.VM_MIGRATED, node.name, vm=vm.to_json(), side="target",
                source=offer.source_name, target=node.name, live=offer.live)
    return vm


def rollback(node: NodeContext, vm: Vm) -> None:
    """An incoming VM that will not be this node's: its VMM, NICs, files and row go (its
    MACs and leases stay the source's)."""
    move_id = vm.move_id
    move = node.store.move(move_id) if move_id else None
    if move is None or move.live:
        try:
            plugins().migration_end(vm=vm, side="target", outcome="abort", node=node)
        except Exception as exc:
            logger.warning("VM {}: ending its waiting VMM failed: {}", vm.name, exc)
        detach_all(node, vm)
    shutil.rmtree(vm.path, ignore_errors=True)
    node.store.delete(vm)
    if move_id:
        node.store.end_move(move_id)


# --- both ----------------------------------------------------------------------------


def reconcile(node: NodeContext, vm: Vm) -> str:
    """What a restarted daemon does with a VM it journaled as moving; one line said."""
    kind = (vm.pending or "").partition(":")[0]
    label = f"VM {vm.name!r}"
    if kind == "incoming":
        rollback(node, vm)
        return f"rolled back the unfinished arrival of {label} from {vm.pending.rsplit(':', 1)[-1]}"
    if kind == "migrating":
        abort_source(node, vm)
        return f"{label} stays here: its move to {vm.moving_to} had not got its files across"
    return (f"{label} moved to {vm.moving_to}, which may own it now: run `virshle vm migrate "
            f"{vm.name} --to {vm.moving_to}` to settle it")


def _move_of(node: NodeContext, vm: Vm, move_id: str | None = None) -> api.Move:
    move = node.store.move(vm.move_id or "")
    if move is None or (move_id is not None and move.id != move_id):
        raise Conflict(f"VM {vm.name!r} is not moving" + (f" as move {move_id}" if move_id else ""),
                       "Start its move with `virshle vm migrate`.", code="no_move")
    return move


def busy(vm: Vm) -> Conflict:
    """The refusal of an operation on a VM that a move (or another operation) holds."""
    if vm.moving_to:
        return Conflict(f"VM {vm.name!r} is moving to node {vm.moving_to}",
                        f"Let it finish, or settle it with `virshle vm migrate {vm.name} --to "
                        f"{vm.moving_to}`.", code="vm_moving")
    return Conflict(f"VM {vm.name!r} is busy ({vm.pending})", "Try again in a moment.",
                    code="vm_busy")


def _incoming(node: NodeContext, uuid: str) -> Vm | None:
    return next((vm for vm in node.store.journal()
                 if vm.uuid == uuid and (vm.pending or "").startswith("incoming:")), None)
