"""What a daemon does before it serves: finish or undo what a crash interrupted.

The journal (the ``pending`` column, written before any work) says what was under way
when the last daemon died; ``reconcile`` settles each such row, and removes what no row
owns (VM directories, half-copied images). See docs/architecture.md, "The journal".
"""

from __future__ import annotations

import shutil

from .. import events
from ..host.images import check_if_marked
from . import migration
from .disks import settle
from .lifecycle import detach_all, end_vmm, live_state, release, undo_creates
from ..log import logger
from ..models import NodeContext, Vm
from ..hooks import plugins
from ..wire.refs import UUID_PATTERN
from ..store.store import Store

DISK_VERBS = ("snapshotting", "restoring", "unsnapshotting", "resizing")
MOVES = ("incoming", "migrating", "migrated")


def reconcile(node: NodeContext) -> list[str]:
    """Finish or undo what a crash interrupted; say what was done (one line each).

    Run by a daemon before it serves: rows still ``creating`` are rolled
    back (their create never answered), ``deleting`` rows are deleted,
    ``starting`` rows are adopted when their VMM runs and reset otherwise,
    ``stopping`` rows get the state their VMM is in; a VM whose disks a snapshot or a
    resize was changing is settled (``disks.settle``: formats, sizes, snapshot rows
    against the disks); a VM that was moving between nodes is rolled back on the side
    the move had not got far enough on (``migration.reconcile``). Directories under
    ``<root>/vm/`` that no row knows (named by a uuid: only ours) are
    removed, and so are half-copied images in ``<root>/cache/``.
    """
    store: Store = node.store
    done: list[str] = []
    for vm in store.journal():
        label = f"VM {vm.name!r} (id {vm.id})"
        try:
            if vm.pending == "creating":
                undo_creates(store, [vm])
                done.append(f"rolled back the unfinished create of {label}")
            elif vm.pending == "deleting":
                _force_stop(node, vm)
                release(node, vm)
                events.emit(events.VM_DELETED, node.name, vm=vm.to_json())
                done.append(f"finished removing {label}")
            elif vm.pending == "starting":
                hypervisor = _running_on(node, vm)
                if hypervisor:
                    store.update(vm, state="running", hypervisor=hypervisor, pending=None)
                    done.append(f"{label} was started on {hypervisor}: adopted it")
                else:
                    for name in plugins().implementers("start"):  # a VMM may still be coming up
                        _force_stop(node, vm.evolve(hypervisor=name))
                    detach_all(node, vm)
                    state = "created" if vm.state == "created" else "shutdown"
                    store.update(vm, state=state, pending=None)
                    done.append(f"the interrupted start of {label} did not boot it: it is {state}")
            elif vm.pending.partition(":")[0] in DISK_VERBS:
                entry = vm.pending
                done += settle(node, vm) or [f"{label}: its disks were as recorded ({entry})"]
            elif vm.pending.partition(":")[0] in MOVES:
                done.append(migration.reconcile(node, vm))
            elif vm.pending == "stopping":
                vm.pending = None
                live = live_state(node, vm)
                if live in ("running", "paused"):
                    store.update(vm, state=live, pending=None)
                else:
                    end_vmm(node, vm)
                    store.update(vm, state="shutdown", pending=None)
                done.append(f"the interrupted stop of {label} left it {vm.state}")
        except Exception as exc:  # one VM must not keep the node from starting
            logger.opt(exception=True).error("reconciling {} failed: {}", label, exc)
            done.append(f"could not reconcile {label} ({vm.pending}): {exc}")
    journaled = {vm.move_id for vm in store.journal() if vm.move_id}
    for move in store.moves():  # a move whose VM's row went (its side had ended)
        if move.id not in journaled:
            store.end_move(move.id)
    for vm in store.all():  # disks a failed disk verb left to check (a full disk, say)
        if vm.state not in ("running", "paused") and check_if_marked(vm):
            done.append(f"checked the disks of VM {vm.name!r} (a disk verb had failed on them)")
    known = store.uuids()
    vm_root = node.root / "vm"
    for entry in sorted(vm_root.iterdir()) if vm_root.is_dir() else []:
        if entry.is_dir() and not entry.is_symlink() and UUID_PATTERN.fullmatch(entry.name) \
                and entry.name not in known:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed {entry}: no VM row owns it")
    cache = node.root / "cache"
    for partial in sorted(cache.glob(".*.partial")) if cache.is_dir() else []:
        partial.unlink(missing_ok=True)
        done.append(f"removed the half-copied image {partial}")
    return done


def _running_on(node: NodeContext, vm: Vm) -> str | None:
    """The hypervisor plugin whose VMM runs ``vm`` (a start may have been cut short)."""
    candidates = ([vm.hypervisor] if vm.hypervisor else []) + [
        name for name in plugins().implementers("start") if name != vm.hypervisor]
    for name in candidates:
        probe = vm.evolve(hypervisor=name)
        try:
            state = plugins().vm_state(vm=probe, node=node)
        except Exception as exc:
            logger.warning("VM {}: asking {} for its state failed: {}", vm.name, name, exc)
            continue
        if state in ("running", "paused"):
            return name
        if state == "crashed":  # its remains (pidfile, sockets) go
            _force_stop(node, probe)
    return None


def _force_stop(node: NodeContext, vm: Vm) -> None:
    if vm.hypervisor:
        try:
            plugins().stop(vm=vm, force=True, node=node)
        except Exception as exc:
            logger.warning("VM {}: force-stopping it failed: {}", vm.name, exc)
