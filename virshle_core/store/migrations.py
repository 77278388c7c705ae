"""The node database's schema, version by version (sqlite-utils, loaded only to migrate).

Migration ``i`` takes the schema from version ``i`` to ``i + 1``; ``Store`` runs those a
database has not had, each once, in a transaction. Only ever append.
"""

from __future__ import annotations

import json
from typing import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite_utils

from ..marks import legacy_interface_name, random_mac


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
            net["ifname"] = net.get("ifname") or legacy_interface_name(row[0], index)
            db.execute("INSERT INTO nics VALUES (?, ?, ?, ?)",
                       [row[0], net["name"], net["mac"], net["ifname"]])
        db.execute("UPDATE vms SET nets = ? WHERE id = ?", [json.dumps(nets), row[0]])


def _v3(db: sqlite_utils.Database) -> None:
    # AUTOINCREMENT: an id is never given again, even after its VM is gone (scripts keep ids).
    # ``pending``: the journal of operations in flight (see the module's docstring).
    columns = [row[1] for row in db.execute("PRAGMA table_info(vms)").fetchall()]
    db.execute("""CREATE TABLE vms_v3 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL, name TEXT NOT NULL, template TEXT NOT NULL,
        vcpu INTEGER NOT NULL, vram INTEGER NOT NULL, disks TEXT, nets TEXT,
        state TEXT NOT NULL, kernel TEXT, initramfs TEXT, cmdline TEXT, firmware TEXT,
        hypervisor TEXT, user_data TEXT, created_at TEXT, updated_at TEXT, pending TEXT)""")
    listed = ", ".join(f"[{c}]" for c in columns)
    db.execute(f"INSERT INTO vms_v3 ({listed}) SELECT {listed} FROM vms")
    db.execute("DROP TABLE vms")
    db.execute("ALTER TABLE vms_v3 RENAME TO vms")
    db.execute("CREATE UNIQUE INDEX idx_vms_uuid ON vms(uuid)")
    db.execute("CREATE UNIQUE INDEX idx_vms_name ON vms(name)")


def _v4(db: sqlite_utils.Database) -> None:
    # What provisioning prepared (virshle_provision), as JSON.
    db.execute("ALTER TABLE vms ADD COLUMN provision TEXT")


def _v5(db: sqlite_utils.Database) -> None:
    # ``autostart``: the daemon starts the VM when it starts and finds it stopped.
    db.execute("ALTER TABLE vms ADD COLUMN autostart INTEGER NOT NULL DEFAULT 0")


def _v6(db: sqlite_utils.Database) -> None:
    # Snapshots: a row each, with what it reserves against [host.limits] disk.
    db.execute("""CREATE TABLE snapshots (
        vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
        name TEXT NOT NULL, memory INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
        PRIMARY KEY (vm_id, name))""")


def _v7(db: sqlite_utils.Database) -> None:
    # ``owner_uid``: the uid that created the VM (the peer of the socket); VMs from before are
    # root's. ``released_nics``: MACs of NICs this node removed with their VM, so that a DHCP
    # plugin reaps only leases that were this node's (several nodes share a network).
    db.execute("ALTER TABLE vms ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT 0")
    db.execute("""CREATE TABLE released_nics (
        mac TEXT PRIMARY KEY, released_at TEXT NOT NULL)""")
    # The shape a snapshot's memory was taken in: restoring it into another is refused.
    db.execute("ALTER TABLE snapshots ADD COLUMN vcpu INTEGER")
    db.execute("ALTER TABLE snapshots ADD COLUMN vram INTEGER")


def _v8(db: sqlite_utils.Database) -> None:
    # ``moves``: the VMs moving to or from another node (vm migrate), each side's journal
    # beside the row's ``pending``. ``node_settings``: what the node keeps about itself
    # (its cordon), read by every command line that asks it.
    db.execute("""CREATE TABLE moves (
        id TEXT PRIMARY KEY, vm_uuid TEXT NOT NULL, side TEXT NOT NULL, peer TEXT NOT NULL,
        peer_name TEXT NOT NULL, live INTEGER NOT NULL, phase TEXT NOT NULL,
        started_at TEXT NOT NULL)""")
    db.execute("CREATE TABLE node_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8]
"""Migration ``i`` takes the schema from version ``i`` to ``i + 1``. Only append."""
