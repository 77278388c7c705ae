"""The node's health: host figures from psutil, reservations from the store.

Saturation follows the original Virshle: each resource's reserved share
(in % of the host) is divided by its limit from ``[host.limits]``; the
node index weighs disk 10, ram 7 and cpu 4. A node is saturated when any
resource reaches its limit (so a template that needs more cannot fit).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import psutil

from ..wire import api
from ..config import Config, VmTemplate
from ..models import NodeContext
from ..hooks import plugins
from ..host.images import virtual_size
from ..store.store import Store

WEIGHTS = {"disk": 10, "ram": 7, "cpu": 4}


def prime_cpu() -> None:
    """psutil's first non-blocking cpu_percent() is meaningless; take it at start-up."""
    psutil.cpu_percent(interval=None)


def host_info(config: Config, store: Store) -> dict[str, Any]:
    root = config.host.root_path
    cpu_total = os.cpu_count() or 1
    usage = psutil.cpu_percent(interval=None)
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(root if root.exists() else root.parent))
    totals = store.totals()
    limits = config.host.limits
    held = "running_" if limits.reserve == "running" else ""  # what holds vcpu and vram

    def share(reserved: float, total: float) -> float:
        return round(100.0 * reserved / total, 1) if total else 0.0

    cpu = {
        "total": cpu_total,
        "used": round(usage * cpu_total / 100.0, 2),
        "usage_pct": usage,
        "reserved": totals[f"{held}vcpu"],
        "reserved_pct": share(totals[f"{held}vcpu"], cpu_total),
        "limit_pct": limits.cpu,
    }
    ram = {
        "total": memory.total,
        "used": memory.total - memory.available,
        "available": memory.available,
        "used_pct": share(memory.total - memory.available, memory.total),
        "reserved": totals[f"{held}vram"],
        "reserved_pct": share(totals[f"{held}vram"], memory.total),
        "limit_pct": limits.ram,
    }
    disk_info = {
        "total": disk.total,
        "used": disk.used,
        "available": disk.free,
        "used_pct": share(disk.used, disk.total),
        "reserved": totals["disk"],
        "reserved_pct": share(totals["disk"], disk.total),
        "limit_pct": limits.disk,
    }
    per_resource = {
        "cpu": cpu["reserved_pct"] / limits.cpu,
        "ram": ram["reserved_pct"] / limits.ram,
        "disk": disk_info["reserved_pct"] / limits.disk,
    }
    index = sum(per_resource[k] * w for k, w in WEIGHTS.items()) / sum(WEIGHTS.values())
    return {
        "hostname": socket.gethostname(),
        "hypervisor": config.host.hypervisor,
        "max_count": config.host.max_count,
        "cpu": cpu,
        "ram": ram,
        "disk": disk_info,
        "vms": {"total": totals["vms"], "by_state": totals["by_state"]},
        "saturation": round(index, 3),
        "saturation_by_resource": {k: round(v, 3) for k, v in per_resource.items()},
        "saturated": any(v >= 1.0 for v in per_resource.values()),
    }


def fits(info: dict[str, Any], template: VmTemplate, limits: Any, cache: Path) -> dict[str, Any]:
    """Whether a VM of ``template`` fits on the node described by ``info``, why not, and
    ``room``: how many more of them the node admits now (None when no limit binds)."""
    from ..vm import admission

    cpu, ram, disk = info["cpu"], info["ram"], info["disk"]
    images = [_image_of(d, cache) for d in template.disk]
    copied = sum(path.stat().st_size for path in images if path is not None)
    each = admission.Need(vcpu=template.vcpu, vram=template.vram,
                          disk=sum(virtual_size(path) for path in images if path is not None))
    capacity = admission.Capacity(cpu=cpu["total"], ram=ram["total"], disk=disk["total"])
    totals = {"vcpu": cpu["reserved"], "vram": ram["reserved"], "disk": disk["reserved"],
              "running_vcpu": cpu["reserved"], "running_vram": ram["reserved"]}
    room = admission.room(limits, capacity, totals, each)
    if copied >= disk["available"]:
        return {"fits": False, "reason": f"disk: {copied} bytes needed, {disk['available']} "
                "available", "room": 0}
    for resource, ok in (("cpu", cpu["reserved"] + template.vcpu <= cpu["total"] * cpu["limit_pct"] // 100),
                         ("ram", ram["reserved"] + template.vram <= ram["total"] * ram["limit_pct"] // 100)):
        if not ok:
            return {"fits": False, "room": 0, "reason": (
                f"cpu: {cpu['reserved']}+{template.vcpu} vcpu exceeds {cpu['limit_pct']}% of "
                f"{cpu['total']}" if resource == "cpu" else
                f"ram: reserving {template.vram} more bytes exceeds {ram['limit_pct']}%")}
    if room == 0:
        return {"fits": False, "room": 0, "reason": "disk: its disks' sizes exceed [host.limits] disk"}
    return {"fits": True, "reason": "", "room": room}


def _image_of(disk, cache: Path) -> Path | None:
    """The image a template disk is made from, when it is on this node (a URL's once cached)."""
    if disk.is_url:
        from ..host.downloads import cache_name

        path = cache / cache_name(disk.path, disk.sha256 or "")
    else:
        path = disk.expanded_path
    return path if path.is_file() else None


def collect(node: NodeContext, store: Store) -> api.NodeInfo:
    """The ``node info`` document: host figures, which templates fit, plugin fields."""
    info = host_info(node.config, store)
    merged: dict[str, Any] = {}
    for extra in plugins().node_info(node=node):
        for key, value in extra.items():
            merged.setdefault(key, value)
    info["plugins"] = merged
    info["cordon"] = cordon_of(store).to_json()
    limits, cache = node.config.host.limits, node.root / "cache"
    info["templates"] = {t.name: fits(info, t, limits, cache) for t in node.config.templates}
    return api.NodeInfo.from_json({"name": node.name, **info}, strict=True)


CORDON = "cordon"
"""The key of the node's cordon in its store's settings."""


def cordon_of(store: Store) -> api.Cordon:
    """Whether the node is cordoned (the balancer skips it), since when and why."""
    import json

    kept = store.setting(CORDON)
    return api.Cordon(cordoned=True, **json.loads(kept)) if kept else api.Cordon(cordoned=False)


def cordon(node: NodeContext, request: api.CordonRequest | None) -> api.Cordon:
    """Keep new VMs off this node (``node cordon``): every command line that asks sees it."""
    import json

    from .. import events
    from ..store.rows import now

    held = cordon_of(node.store)
    if not held.cordoned:
        held = api.Cordon(cordoned=True, since=now(), reason=(request.reason if request else ""))
        node.store.set_setting(CORDON, json.dumps({"since": held.since, "reason": held.reason}))
        events.emit(events.NODE_CORDONED, node.name, cordoned=True, reason=held.reason)
    return held


def uncordon(node: NodeContext, request: None = None) -> api.Cordon:
    """Let the balancer place new VMs on this node again (``node uncordon``)."""
    from .. import events

    if cordon_of(node.store).cordoned:
        node.store.set_setting(CORDON, None)
        events.emit(events.NODE_CORDONED, node.name, cordoned=False, reason="")
    return api.Cordon(cordoned=False)
