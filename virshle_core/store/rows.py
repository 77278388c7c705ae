"""How a VM is written in the store's ``vm`` table, and read back.

Its disks, NICs and provisioning are JSON columns; its directory is not stored
(it is ``<root>/vm/<uuid>``, whatever the root is today).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ..models import Disk, Net, Vm


def now(offset: float = 0) -> str:
    """The time, ``offset`` seconds from now, as the store writes it (UTC, ISO 8601)."""
    stamp = datetime.now(timezone.utc)
    if offset:
        from datetime import timedelta

        stamp += timedelta(seconds=offset)
    return stamp.isoformat(timespec="seconds")


def vm_of(row: dict[str, Any], node: str, vm_root: str) -> Vm:
    """The VM a row holds, on node ``node``, its directory under ``vm_root``."""
    disks = [Disk(**d) for d in _loads(row.get("disks"), [])]
    nets = [Net(**n) for n in _loads(row.get("nets"), [])]
    vm = Vm(
        id=row["id"], uuid=row["uuid"], name=row["name"], node=node,
        template=row["template"], vcpu=row["vcpu"], vram=row["vram"],
        disks=disks, nets=nets, state=row["state"],
        kernel=row.get("kernel"), initramfs=row.get("initramfs"),
        cmdline=row.get("cmdline"), firmware=row.get("firmware"),
        hypervisor=row.get("hypervisor"), user_data=row.get("user_data"),
        created_at=row.get("created_at") or "", updated_at=row.get("updated_at") or "",
        pending=row.get("pending"), provision=_loads(row.get("provision"), {}),
        autostart=bool(row.get("autostart")), owner_uid=row.get("owner") or 0,
    )
    vm.dir = f"{vm_root}/{vm.uuid}"  # a string join: pathlib cost a third of a listing
    return vm


def row_of(vm: Vm, stamp: str) -> dict[str, Any]:
    """The row of a new VM, created and updated at ``stamp``."""
    return {
        "uuid": vm.uuid, "name": vm.name, "template": vm.template,
        "vcpu": vm.vcpu, "vram": vm.vram,
        "disks": json.dumps([disk_json(d) for d in vm.disks]),
        "nets": json.dumps([net_json(n) for n in vm.nets]),
        "state": vm.state, "kernel": vm.kernel, "initramfs": vm.initramfs,
        "cmdline": vm.cmdline, "firmware": vm.firmware, "hypervisor": vm.hypervisor,
        "user_data": vm.user_data, "created_at": stamp, "updated_at": stamp,
        "pending": vm.pending, "provision": json.dumps(vm.provision),
        "autostart": int(vm.autostart), "owner": vm.owner_uid,
    }


def _loads(text: str | None, empty: Any) -> Any:
    """A JSON column (the C scanner alone: ``json.loads`` costs twice as much per column)."""
    if not text or text in ("[]", "{}"):
        return type(empty)()
    from ..client.jsonlite import loads

    return loads(text)


def disk_json(disk: Disk) -> dict:
    return {"name": disk.name, "path": disk.path, "size": disk.size, "readonly": disk.readonly,
            "source": disk.source, "format": disk.format}


def net_json(net: Net) -> dict:
    return {"name": net.name, "type": net.type, "options": net.options, "mac": net.mac,
            "ifname": net.ifname}
