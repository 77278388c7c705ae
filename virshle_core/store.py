"""The node's database: ``<root>/virshle.sqlite`` through sqlite-utils.

WAL mode, one ``schema_version`` row, and forward migrations: each entry of
``MIGRATIONS`` moves the schema one version up and runs once, in a
transaction, so a newer Virshle opens an older database without losing VMs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlite_utils

from .errors import Conflict, NotFound, UsageError
from .models import Disk, Net, Vm


MAC_PREFIX = "02:76:73"
"""Locally administered, unicast: every MAC Virshle gives a NIC starts with it."""


def random_mac() -> str:
    import secrets

    tail = secrets.token_bytes(3)
    return MAC_PREFIX + "".join(f":{b:02x}" for b in tail)


def interface_name(vm_id: int, index: int) -> str:
    """``vm<id>n<index>``: unique as the id is, and at most 15 characters for any id below 10^10."""
    return f"vm{vm_id}n{index}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _v1(db: sqlite_utils.Database) -> None:
    db["vms"].create(
        {
            "id": int,
            "uuid": str,
            "name": str,
            "template": str,
            "vcpu": int,
            "vram": int,
            "disks": str,
            "nets": str,
            "state": str,
            "kernel": str,
            "initramfs": str,
            "cmdline": str,
            "firmware": str,
            "hypervisor": str,
            "user_data": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"uuid", "name", "template", "vcpu", "vram", "state"},
    )
    db.execute("CREATE UNIQUE INDEX idx_vms_uuid ON vms(uuid)")
    db.execute("CREATE UNIQUE INDEX idx_vms_name ON vms(name)")


def _v2(db: sqlite_utils.Database) -> None:
    # One row per NIC: the unique indexes make MAC and host interface allocation atomic.
    db.execute("""CREATE TABLE nics (
        vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
        name TEXT NOT NULL, mac TEXT NOT NULL UNIQUE, ifname TEXT NOT NULL UNIQUE,
        PRIMARY KEY (vm_id, name))""")
    for row in db.execute("SELECT id, nets FROM vms").fetchall():
        nets = json.loads(row[1] or "[]")
        for index, net in enumerate(nets):
            net["mac"] = net.get("mac") or random_mac()
            net["ifname"] = net.get("ifname") or interface_name(row[0], index)
            db.execute("INSERT INTO nics VALUES (?, ?, ?, ?)",
                       [row[0], net["name"], net["mac"], net["ifname"]])
        db.execute("UPDATE vms SET nets = ? WHERE id = ?", [json.dumps(nets), row[0]])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2]
"""Migration ``i`` takes the schema from version ``i`` to ``i + 1``. Only append."""


class Store:
    """The VMs of one node."""

    def __init__(self, path: Path | str, node: str = "default"):
        self.path = Path(path)
        self.node = node
        self._lock = threading.RLock()
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30,
                               isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    # --- schema ------------------------------------------------------------------

    @property
    def version(self) -> int:
        if "schema_version" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT version FROM schema_version").fetchone()
        return row[0] if row else 0

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if "schema_version" not in self.db.table_names():
                    self.db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                    self.db.execute("INSERT INTO schema_version VALUES (0)")
                current = self.version
                if current > len(MIGRATIONS):
                    raise UsageError(
                        f"{self.path} has schema version {current}, newer than this Virshle "
                        f"understands ({len(MIGRATIONS)})",
                        "Upgrade Virshle on this node.",
                    )
                for index in range(current, len(MIGRATIONS)):
                    MIGRATIONS[index](self.db)
                    self.db.execute("UPDATE schema_version SET version = ?", [index + 1])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            return self.version

    # --- VMs --------------------------------------------------------------------

    def _to_vm(self, row: dict[str, Any], root: Path | None = None) -> Vm:
        disks = [Disk(**d) for d in json.loads(row.get("disks") or "[]")]
        nets = [Net(**n) for n in json.loads(row.get("nets") or "[]")]
        vm = Vm(
            id=row["id"], uuid=row["uuid"], name=row["name"], node=self.node,
            template=row["template"], vcpu=row["vcpu"], vram=row["vram"],
            disks=disks, nets=nets, state=row["state"],
            kernel=row.get("kernel"), initramfs=row.get("initramfs"),
            cmdline=row.get("cmdline"), firmware=row.get("firmware"),
            hypervisor=row.get("hypervisor"), user_data=row.get("user_data"),
            created_at=row.get("created_at") or "", updated_at=row.get("updated_at") or "",
        )
        vm.dir = str(self.path.parent / "vm" / vm.uuid)
        return vm

    def insert(self, vm: Vm) -> Vm:
        """Insert a new VM; its name and uuid must be free (raises Conflict)."""
        stamp = now()
        row = {
            "uuid": vm.uuid, "name": vm.name, "template": vm.template,
            "vcpu": vm.vcpu, "vram": vm.vram,
            "disks": json.dumps([_disk_row(d) for d in vm.disks]),
            "nets": json.dumps([_net_row(n) for n in vm.nets]),
            "state": vm.state, "kernel": vm.kernel, "initramfs": vm.initramfs,
            "cmdline": vm.cmdline, "firmware": vm.firmware, "hypervisor": vm.hypervisor,
            "user_data": vm.user_data, "created_at": stamp, "updated_at": stamp,
        }
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                table = self.db["vms"]
                table.insert(row)
                vm.id = table.last_pk
                self._allocate_nics(vm)
                self.db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self.db.execute("ROLLBACK")
                vm.id = None
                column = "name" if "name" in str(exc) else "uuid"
                raise Conflict(
                    f"a VM named {vm.name!r} already exists on node {self.node!r}"
                    if column == "name" else f"uuid {vm.uuid} is already used",
                    "Choose another --name, or remove the old VM with `virshle vm rm`.",
                    code="name_taken" if column == "name" else "uuid_taken",
                ) from None
            except BaseException:
                self.db.execute("ROLLBACK")
                vm.id = None
                raise
        vm.created_at = vm.updated_at = stamp
        return vm

    def _allocate_nics(self, vm: Vm) -> None:
        """Give each NIC a unique MAC and host interface name (inside the insert's transaction)."""
        for index, net in enumerate(vm.nets):
            net.ifname = interface_name(vm.id, index)
            for _attempt in range(50):
                net.mac = net.mac or random_mac()
                try:
                    self.db.execute("SAVEPOINT nic")
                    self.db.execute("INSERT INTO nics VALUES (?, ?, ?, ?)",
                                    [vm.id, net.name, net.mac, net.ifname])
                    self.db.execute("RELEASE nic")
                    break
                except sqlite3.IntegrityError as exc:
                    self.db.execute("ROLLBACK TO nic")
                    self.db.execute("RELEASE nic")
                    if "ifname" in str(exc):
                        raise Conflict(f"interface name {net.ifname} is already taken") from None
                    net.mac = None  # a MAC collision: draw again
            else:
                raise Conflict("could not find a free MAC address after 50 draws")
        if vm.nets:
            self.db.execute("UPDATE vms SET nets = ? WHERE id = ?",
                            [json.dumps([_net_row(n) for n in vm.nets]), vm.id])

    def macs(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self.db.execute("SELECT mac FROM nics").fetchall()}

    def update(self, vm: Vm, **fields: Any) -> Vm:
        for key, value in fields.items():
            setattr(vm, key, value)
        row = {
            "state": vm.state,
            "disks": json.dumps([_disk_row(d) for d in vm.disks]),
            "nets": json.dumps([_net_row(n) for n in vm.nets]),
            "hypervisor": vm.hypervisor,
            "updated_at": now(),
        }
        with self._lock:
            self.db["vms"].update(vm.id, row)
        vm.updated_at = row["updated_at"]
        return vm

    def delete(self, vm: Vm) -> None:
        with self._lock:
            self.db.execute("DELETE FROM nics WHERE vm_id = ?", [vm.id])
            self.db.execute("DELETE FROM vms WHERE id = ?", [vm.id])

    def all(self) -> list[Vm]:
        with self._lock:
            rows = list(self.db["vms"].rows_where(order_by="id"))
        return [self._to_vm(row) for row in rows]

    def __iter__(self) -> Iterator[Vm]:
        return iter(self.all())

    def get(self, ref: str | int) -> Vm:
        """Find a VM by id, uuid or name; raise NotFound naming the reference."""
        ref = str(ref)
        clauses = []
        if ref.isdigit():
            clauses.append(("id = ?", [int(ref)]))
        clauses.append(("uuid = ?", [ref]))
        clauses.append(("name = ?", [ref]))
        for where, args in clauses:
            with self._lock:
                rows = list(self.db["vms"].rows_where(where, args))
            if rows:
                return self._to_vm(rows[0])
        raise NotFound(
            f"no VM {ref!r} on node {self.node!r}",
            "List the VMs with `virshle vm ls`; refer to one by --id, --name or --uuid.",
            code="vm_not_found",
        )

    def names(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT name FROM vms").fetchall()}

    def totals(self) -> dict[str, int]:
        """Reserved resources and counts over this node's VMs, whatever their state."""
        row = self.db.execute(
            "SELECT count(*), coalesce(sum(vcpu), 0), coalesce(sum(vram), 0) FROM vms"
        ).fetchone()
        disk = 0
        by_state: dict[str, int] = {}
        for disks_json, state in self.db.execute("SELECT disks, state FROM vms").fetchall():
            by_state[state] = by_state.get(state, 0) + 1
            for disk_row in json.loads(disks_json or "[]"):
                disk += int(disk_row.get("size") or 0)
        return {"vms": row[0], "vcpu": row[1], "vram": row[2], "disk": disk, "by_state": by_state}

    def close(self) -> None:
        self.db.conn.close()


def _disk_row(disk: Disk) -> dict:
    return {"name": disk.name, "path": disk.path, "size": disk.size, "readonly": disk.readonly,
            "source": disk.source, "format": disk.format}


def _net_row(net: Net) -> dict:
    return {"name": net.name, "type": net.type, "options": net.options, "mac": net.mac,
            "ifname": net.ifname}
