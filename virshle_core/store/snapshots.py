"""A VM's snapshot rows: what each reserves, and the shape its memory was taken in."""

from __future__ import annotations

import sqlite3
from typing import Callable

from ..errors import Conflict, NotFound
from ..models import Vm
from .room import _room_kept
from .rows import now

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..wire.api import Snapshot


class Snapshots:
    """The snapshot rows of a ``Store``."""

    def snapshots(self, vm: Vm) -> list["Snapshot"]:
        """The VM's snapshots, oldest first."""
        from ..wire.api import Snapshot

        with self._lock:
            rows = self.conn.execute(
                "SELECT name, memory, state, size, created_at, vcpu, vram FROM snapshots "
                "WHERE vm_id = ? ORDER BY created_at, rowid", [vm.id]).fetchall()
        return [Snapshot(name=name, vm=vm.name, memory=bool(memory), state=state, size=size,
                         created_at=created_at, vcpu=vcpu, vram=vram)
                for name, memory, state, size, created_at, vcpu, vram in rows]

    def snapshot(self, vm: Vm, name: str) -> "Snapshot":
        """One snapshot of ``vm``; NotFound naming the ones it has."""
        for snapshot in self.snapshots(vm):
            if snapshot.name == name:
                return snapshot
        names = [s.name for s in self.snapshots(vm)]
        raise NotFound(f"VM {vm.name!r} has no snapshot {name!r}",
                       f"Its snapshots: {', '.join(names)}." if names
                       else f"It has none; take one with `virshle vm snapshot create {vm.name} NAME`.",
                       code="snapshot_not_found")

    @_room_kept
    def add_snapshot(self, vm: Vm, snapshot: "Snapshot",
                     admit: Callable[[dict[str, int]], None] | None = None) -> "Snapshot":
        """Record ``snapshot`` (its name free on this VM), admitted against the limits first."""
        snapshot.created_at = snapshot.created_at or now()
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if admit is not None:
                    admit(self.totals())
                self.conn.execute(
                    "INSERT INTO snapshots (vm_id, name, memory, state, size, created_at, vcpu, "
                    "vram) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
                        vm.id, snapshot.name, int(snapshot.memory), snapshot.state, snapshot.size,
                        snapshot.created_at, snapshot.vcpu, snapshot.vram])
                self.conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._rollback()
                raise Conflict(f"VM {vm.name!r} already has a snapshot {snapshot.name!r}",
                               "Choose another name, or remove it with `virshle vm snapshot rm`.",
                               code="snapshot_exists") from None
            except BaseException:
                self._rollback()
                raise
        return snapshot

    @_room_kept
    def remove_snapshot(self, vm: Vm, name: str) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM snapshots WHERE vm_id = ? AND name = ?", [vm.id, name])
