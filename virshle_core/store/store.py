"""The node's database: ``<root>/virshle.sqlite``, through sqlite3 on the request path.

WAL mode, one ``schema_version`` row, and forward migrations (``migrations.py``):
each moves the schema one version up and runs once, in a transaction, so a
newer Virshle opens an older database without losing VMs.

The ``pending`` column is the journal of operations in flight: a create
writes its rows with ``pending = 'creating'`` before it makes any file, a
start, stop or delete marks its row before it touches anything. A daemon
that starts finds every row still marked and finishes or undoes its work
(``virshle_core.vm.reconcile``). Rows being created are invisible to listings
and lookups, but they count against the node's limits.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite_utils


from ..errors import Conflict, NotFound, UsageError
from ..models import Vm
from .migrations import MIGRATIONS
from ..wire.refs import MAX_ID, VmRef
from .moves import Moves
from .nics import RELEASED_DAYS, Nics
from .room import Room, _room_kept
from .rows import changes_of, now, row_of, vm_of
from .snapshots import Snapshots

PENDING = ("creating", "starting", "stopping", "deleting",
           "snapshotting", "restoring", "unsnapshotting", "resizing",
           "migrating", "migrated", "incoming")
"""The journal's values: the operation in flight on a row (the disk verbs name their
snapshot after a colon: ``snapshotting:first``; a move, its id and the other node's name:
``migrating:<id>:<node>`` on the source until the target holds everything, then
``migrated:<id>:<node>``; ``incoming:<id>:<node>`` on the target until it owns the VM)."""
RUNS = ("running", "paused")
"""States in which a VM holds its vcpu and vram under ``[host.limits] reserve = "running"``."""
UNLISTED = ("creating", "incoming")
"""Rows listings and lookups do not see: a VM not made yet, or not this node's yet."""
KEEPS_ITS_NICS = ("creating", "incoming", "migrating", "migrated")
"""Rows whose NICs are not released with them: never given out, or moving with their VM."""
VISIBLE = "(pending IS NULL OR (pending != 'creating' AND pending NOT LIKE 'incoming:%'))"
"""The SQL that keeps the ``UNLISTED`` rows out."""


class Store(Moves, Nics, Room, Snapshots):
    """The VMs of one node."""

    def __init__(self, path: Path | str, node: str = "default"):
        self.path = Path(path)
        self.node = node
        self._vm_root = str(self.path.parent / "vm")
        self._lock = threading.RLock()
        self._tag: str | None = None
        self._listed: str | None = None
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30,
                               isolation_level=None, cached_statements=256)
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self._db: sqlite_utils.Database | None = None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: a commit does not wait for fsync (only checkpoints
            # do). The database stays consistent through a power cut; the last commits may be
            # lost, and the journal (``pending``) makes any such loss a clean rollback.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA cache_size=-1024")  # 1 MiB of pages (2 by default) per connection
            self.migrate()
        except BaseException:
            conn.close()
            raise

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection: migrations and tests use it; the hot paths
        (every request) use the connection's cached, prepared statements directly."""
        if self._db is None:
            import sqlite_utils  # about 5 MiB that a daemon whose schema is current never loads

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def _tables(self) -> set[str]:
        return {row[0] for row in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}

    def _rows(self, where: str, args: list | None = None, user_data: bool = True
              ) -> list[dict[str, Any]]:
        """The rows that match; without ``user_data``, that column is not even read (it may
        hold a megabyte a VM, and a listing has no use for it)."""
        columns = "*" if user_data else self._listed_columns()
        return [dict(row) for row in self.conn.execute(
            f"SELECT {columns} FROM vms WHERE {where} ORDER BY id", args or []).fetchall()]

    def _listed_columns(self) -> str:
        if self._listed is None:
            names = [row[1] for row in self.conn.execute("PRAGMA table_info(vms)")]
            self._listed = ", ".join(f"[{name}]" for name in names if name != "user_data")
        return self._listed

    # --- schema ------------------------------------------------------------------

    @property
    def version(self) -> int:
        if "schema_version" not in self._tables():
            return 0
        row = self.conn.execute("SELECT version FROM schema_version").fetchone()
        return row[0] if row else 0

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version."""
        with self._lock:
            # A rebuilt table must not cascade deletes into its children: foreign keys are
            # off while migrating (the pragma is a no-op inside a transaction).
            if self.version == len(MIGRATIONS):
                return self.version  # the usual case: nothing to do, no transaction
            self.conn.execute("PRAGMA foreign_keys=OFF")
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if "schema_version" not in self._tables():
                    self.conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                    self.conn.execute("INSERT INTO schema_version VALUES (0)")
                current = self.version
                if current > len(MIGRATIONS):
                    raise UsageError(
                        f"{self.path} has schema version {current}, newer than this Virshle "
                        f"understands ({len(MIGRATIONS)})",
                        "Upgrade Virshle on this node.",
                    )
                for index in range(current, len(MIGRATIONS)):
                    MIGRATIONS[index](self.db)
                    self.conn.execute("UPDATE schema_version SET version = ?", [index + 1])
                broken = self.conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise UsageError(f"{self.path}: the migration broke {len(broken)} reference(s)")
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            finally:
                self.conn.execute("PRAGMA foreign_keys=ON")
            return self.version

    # --- VMs --------------------------------------------------------------------

    def insert(self, vm: Vm) -> Vm:
        """Insert one VM; its name and uuid must be free (raises Conflict)."""
        return self.insert_many([vm])[0]

    @_room_kept
    def insert_many(self, vms: list[Vm], admit: Callable[[dict[str, int]], None] | None = None,
                    pick_name: Callable[[set[str]], str] | None = None) -> list[Vm]:
        """Insert ``vms`` in one transaction: all of them, or none.

        ``admit(totals)`` runs first, inside the same write transaction, with
        the reservations of every row (those still being created included):
        it raises to refuse, and no other writer can slip in between the
        check and the insert. A VM without a name gets ``pick_name(taken)``.
        """
        stamp = now()
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if admit is not None:
                    admit(self.totals())
                taken = self.names() if pick_name else set()
                for vm in vms:
                    if not vm.name:
                        assert pick_name is not None, "a VM without a name needs pick_name"
                        vm.name = pick_name(taken)
                    taken.add(vm.name)
                    row = row_of(vm, stamp)
                    cursor = self.conn.execute(
                        f"INSERT INTO vms ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        list(row.values()))
                    vm.id = cursor.lastrowid
                    self._allocate_nics(vm)
                self.conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._rollback()
                for vm in vms:
                    vm.id = None
                column = "name" if "name" in str(exc) else "uuid"
                clash = next((vm.name for vm in vms if vm.name in self.names()), vms[0].name)
                raise Conflict(
                    f"a VM named {clash!r} already exists on node {self.node!r}"
                    if column == "name" else "a uuid is already used",
                    "Choose another --name, or remove the old VM with `virshle vm rm`.",
                    code="name_taken" if column == "name" else "uuid_taken",
                ) from None
            except BaseException:
                self._rollback()
                for vm in vms:
                    vm.id = None
                raise
        for vm in vms:
            vm.created_at = vm.updated_at = stamp
        return vms

    def _rollback(self) -> None:
        """Roll back the transaction under way, if SQLite has not already (a full disk at
        COMMIT ends it, and a second ROLLBACK would hide the first error)."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @_room_kept
    def update(self, vm: Vm, **fields: Any) -> Vm:
        for key, value in fields.items():
            setattr(vm, key, value)
        vm.updated_at = now()
        row = changes_of(vm)
        with self._lock:
            self._update(vm.id, row)
        return vm

    def _update(self, vm_id: int, fields: dict[str, Any]) -> None:
        names = ", ".join(f"{key} = ?" for key in fields)
        self.conn.execute(f"UPDATE vms SET {names} WHERE id = ?", [*fields.values(), vm_id])

    @_room_kept
    def mark(self, vm: Vm, pending: str | None) -> Vm:
        """Write (or, with None, clear) the journal entry of ``vm``."""
        assert pending is None or pending.partition(":")[0] in PENDING
        with self._lock:
            self.conn.execute("UPDATE vms SET pending = ? WHERE id = ?", [pending, vm.id])
        vm.pending = pending
        return vm

    @_room_kept
    def finish_creating(self, vms: list[Vm]) -> None:
        """The create of ``vms`` is complete: they become visible, all at once."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for vm in vms:
                    vm.pending, vm.updated_at = None, now()
                    self._update(vm.id, changes_of(vm))
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def delete(self, vm: Vm) -> None:
        self.delete_many([vm])

    @_room_kept
    def delete_many(self, vms: list[Vm]) -> None:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for vm in vms:
                    if vm.id is None:
                        continue
                    if (vm.pending or "").partition(":")[0] not in KEEPS_ITS_NICS:
                        self.conn.executemany(
                            "INSERT OR REPLACE INTO released_nics VALUES (?, ?)",
                            [(net.mac.lower(), now()) for net in vm.nets if net.mac])
                    self.conn.execute("DELETE FROM nics WHERE vm_id = ?", [vm.id])
                    self.conn.execute("DELETE FROM snapshots WHERE vm_id = ?", [vm.id])
                    self.conn.execute("DELETE FROM vms WHERE id = ?", [vm.id])
                self.conn.execute("DELETE FROM released_nics WHERE released_at < ?",
                                  [now(-RELEASED_DAYS * 86400)])
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def all(self) -> list[Vm]:
        """Every VM, in id order, without its user-data (``get`` reads it); rows still being
        created are not VMs yet."""
        with self._lock:
            rows = self._rows(VISIBLE, user_data=False)
        return [vm_of(row, self.node, self._vm_root) for row in rows]

    def journal(self) -> list[Vm]:
        """The rows with an operation in flight (``pending`` set), in id order."""
        with self._lock:
            rows = self._rows("pending IS NOT NULL")
        return [vm_of(row, self.node, self._vm_root) for row in rows]

    def uuids(self) -> set[str]:
        """The uuid of every row, being created or not."""
        with self._lock:
            return {row[0] for row in self.conn.execute("SELECT uuid FROM vms").fetchall()}

    def count(self) -> int:
        """How many rows the store holds, being created or not."""
        with self._lock:
            return self.conn.execute("SELECT count(*) FROM vms").fetchone()[0]

    def __iter__(self) -> Iterator[Vm]:
        return iter(self.all())

    def get(self, ref: VmRef | str | int) -> Vm:
        """The VM ``ref`` names, in its own namespace; NotFound naming the reference.

        A bare ``str``/``int`` is read by its shape (see ``virshle_core.wire.refs``); a
        bare reference that matches an id *and* an old all-digit name is refused
        as ambiguous.
        """
        if not isinstance(ref, VmRef):
            ref = VmRef.parse(str(ref))
        visible = VISIBLE
        rows: list[dict] = []
        if ref.kind == "id":
            if ref.value <= MAX_ID:
                with self._lock:
                    rows = self._rows(f"id = ? AND {visible}", [ref.value])
            if ref.bare:
                with self._lock:
                    named = self._rows(f"name = ? AND {visible}", [str(ref.value)])
                if named and (not rows or named[0]["id"] != rows[0]["id"]):
                    # an all-digit name (only older versions allowed them): a bare reference
                    # could mean either, so it means neither
                    raise UsageError(
                        f"{ref.value!r} is ambiguous on node {self.node!r}: a VM is named "
                        f"{ref.value!r}" + (f" and another has id {ref.value}" if rows else ""),
                        f"Say which: id:{ref.value} or name:{ref.value} "
                        "(--id or --name on the command line).", code="ambiguous_ref")
        else:
            with self._lock:
                rows = self._rows(f"{ref.kind} = ? AND {visible}", [ref.value])
        if rows:
            return vm_of(rows[0], self.node, self._vm_root)
        raise NotFound(
            f"no VM with {ref.label} on node {self.node!r}" if ref.kind != "name"
            else f"no VM {ref.value!r} on node {self.node!r}",
            "List the VMs with `virshle vm ls`; refer to one by --id, --name or --uuid.",
            code="vm_not_found",
        )

    def names(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT name FROM vms").fetchall()}

    def totals(self) -> dict[str, int]:
        """Reserved resources and counts over this node's rows, whatever their state
        (``vcpu``, ``vram``), and over those that run (``running_vcpu``, ``running_vram``:
        running, paused or starting; a live move's arriving row is running).

        Rows still being created count: they are promised to a create in flight.
        """
        with self._lock:
            row = self.conn.execute(
                "SELECT count(*), coalesce(sum(vcpu), 0), coalesce(sum(vram), 0) FROM vms"
            ).fetchone()
            listed = self.conn.execute("SELECT disks, state, pending, vcpu, vram FROM vms"
                                       ).fetchall()
            disk = self.conn.execute("SELECT coalesce(sum(size), 0) FROM snapshots").fetchone()[0]
        by_state: dict[str, int] = {}
        creating = running_vcpu = running_vram = 0
        for disks_json, state, pending, vcpu, vram in listed:
            doing = (pending or "").partition(":")[0]
            if doing in UNLISTED:
                creating += 1
            else:
                by_state[state] = by_state.get(state, 0) + 1
            if state in RUNS or doing == "starting":
                running_vcpu, running_vram = running_vcpu + vcpu, running_vram + vram
            for disk_row in json.loads(disks_json or "[]"):
                disk += int(disk_row.get("size") or 0)
        totals = {"vms": row[0] - creating, "vcpu": row[1], "vram": row[2], "disk": disk,
                  "running_vcpu": running_vcpu, "running_vram": running_vram,
                  "by_state": by_state}
        if creating:
            totals["creating"] = creating
        return totals

    @_room_kept
    def mark_admitted(self, vm: Vm, pending: str, admit: Callable[[dict[str, int]], None]) -> Vm:
        """``mark`` inside one write transaction with ``admit(totals)`` run first: two starts
        checked against the limits cannot both take the last room."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                admit(self.totals())
                self.mark(vm, pending)
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return vm

    @_room_kept
    def update_admitted(self, vm: Vm, admit: Callable[[dict[str, int]], None], **fields: Any) -> Vm:
        """``update`` inside one write transaction with ``admit(totals)`` run first: a resize
        checked against the limits cannot race another resize or a create."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                admit(self.totals())
                self.update(vm, **fields)
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return vm

    def close(self) -> None:
        self.conn.close()
