"""How a VM is written in the store's ``vms`` table, and read back: derived from the VM's
one declaration (``wire.api.Vm``, extended by the node's ``models.Vm``), never repeated.

A column is a field of the same name. Lists and mappings (disks, NICs, provisioning) are
JSON columns, each disk and NIC written with all its fields (the node's ``source`` too);
booleans are integers. The fields in ``Vm.__transient__`` are not stored (the node's name,
the directory under today's root, the leases), and ``WRITTEN_ONCE`` are set by the insert
alone (``user_data`` may be a megabyte: a listing never reads it, an update never writes it).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ..models import Disk, Net, Vm
from ..wire.record import Field

WRITTEN_ONCE = ("id", "uuid", "name", "template", "created_at", "user_data")
ITEMS = {"Disk": Disk, "Net": Net}
"""The node's class of each record a VM holds in a list."""


def now(offset: float = 0) -> str:
    """The time, ``offset`` seconds from now, as the store writes it (UTC, ISO 8601)."""
    stamp = datetime.now(timezone.utc)
    if offset:
        from datetime import timedelta

        stamp += timedelta(seconds=offset)
    return stamp.isoformat(timespec="seconds")


STORED: tuple[Field, ...] = tuple(f for f in Vm.__fields__ if f.name not in Vm.__transient__)
"""The VM's fields that are columns."""
CHANGING: tuple[Field, ...] = tuple(f for f in STORED if f.name not in WRITTEN_ONCE)


def _encode(field: Field, value: Any) -> Any:
    if field.type.startswith("list[") and field.type[5:-1] in ITEMS:
        return json.dumps([{f.name: getattr(item, f.name) for f in item.__fields__} for item in value])
    if field.type.startswith(("dict[", "list[")):
        return json.dumps(value)
    if field.type == "bool":
        return int(value)
    return value


def _decode(field: Field, value: Any) -> Any:
    if value is None and "None" not in field.type:
        default = field.default
        return default.copy() if isinstance(default, (list, dict)) else default
    if field.type.startswith("list[") and field.type[5:-1] in ITEMS:
        cls = ITEMS[field.type[5:-1]]
        known = {f.name for f in cls.__fields__}
        return [cls(**{k: v for k, v in item.items() if k in known}) for item in _loads(value, [])]
    if field.type.startswith(("dict[", "list[")):
        return _loads(value, type(field.default)())
    if field.type == "bool":
        return bool(value)
    return value


def vm_of(row: dict[str, Any], node: str, vm_root: str) -> Vm:
    """The VM a row holds, on node ``node``, its directory under ``vm_root``."""
    vm = Vm(node=node, **{f.name: _decode(f, row[f.name]) for f in STORED if f.name in row})
    vm.dir = f"{vm_root}/{vm.uuid}"  # a string join: pathlib cost a third of a listing
    return vm


def row_of(vm: Vm, stamp: str) -> dict[str, Any]:
    """The row of a new VM, created and updated at ``stamp`` (its id is the store's)."""
    row = {f.name: _encode(f, getattr(vm, f.name)) for f in STORED if f.name != "id"}
    row["created_at"] = row["updated_at"] = stamp
    return row


def changes_of(vm: Vm) -> dict[str, Any]:
    """What an update writes: every column a VM's life may change."""
    return {f.name: _encode(f, getattr(vm, f.name)) for f in CHANGING}


def column(vm: Vm, name: str) -> Any:
    """One column's value for ``vm`` (``nets``, ``disks``...), as the store writes it."""
    return _encode(next(f for f in STORED if f.name == name), getattr(vm, name))


def _loads(text: str | None, empty: Any) -> Any:
    if not text or text in ("[]", "{}"):
        return empty
    return json.loads(text)
