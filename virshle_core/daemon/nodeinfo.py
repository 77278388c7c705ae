"""The node's health: host figures from psutil, reservations from the store.

Saturation follows the original Virshle: each resource's reserved share
(in % of the host) is divided by its limit from ``[host.limits]``; the
node index weighs disk 10, ram 7 and cpu 4. A node is saturated when any
resource reaches its limit (so a template that needs more cannot fit).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import psutil

from ..wire import api
from ..config import Config, VmTemplate
from ..models import NodeContext
from ..hooks import plugins
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

    def share(reserved: float, total: float) -> float:
        return round(100.0 * reserved / total, 1) if total else 0.0

    cpu = {
        "total": cpu_total,
        "used": round(usage * cpu_total / 100.0, 2),
        "usage_pct": usage,
        "reserved": totals["vcpu"],
        "reserved_pct": share(totals["vcpu"], cpu_total),
        "limit_pct": limits.cpu,
    }
    ram = {
        "total": memory.total,
        "used": memory.total - memory.available,
        "available": memory.available,
        "used_pct": share(memory.total - memory.available, memory.total),
        "reserved": totals["vram"],
        "reserved_pct": share(totals["vram"], memory.total),
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


def fits(info: dict[str, Any], template: VmTemplate) -> tuple[bool, str]:
    """Whether a VM of ``template`` fits on the node described by ``info``, and why not."""
    cpu, ram, disk = info["cpu"], info["ram"], info["disk"]
    if (cpu["reserved"] + template.vcpu) * 100.0 / cpu["total"] > cpu["limit_pct"]:
        return False, f"cpu: {cpu['reserved']}+{template.vcpu} vcpu exceeds {cpu['limit_pct']}% of {cpu['total']}"
    if (ram["reserved"] + template.vram) * 100.0 / ram["total"] > ram["limit_pct"]:
        return False, f"ram: reserving {template.vram} more bytes exceeds {ram['limit_pct']}%"
    need = sum(d.expanded_path.stat().st_size for d in template.disk if d.expanded_path.is_file())
    if need >= disk["available"]:
        return False, f"disk: {need} bytes needed, {disk['available']} available"
    return True, ""


def collect(node: NodeContext, store: Store) -> api.NodeInfo:
    """The ``node info`` document: host figures, which templates fit, plugin fields."""
    info = host_info(node.config, store)
    merged: dict[str, Any] = {}
    for extra in plugins().node_info(node=node):
        for key, value in extra.items():
            merged.setdefault(key, value)
    info["plugins"] = merged
    info["templates"] = {
        t.name: dict(zip(("fits", "reason"), fits(info, t))) for t in node.config.templates
    }
    return api.NodeInfo.from_json({"name": node.name, **info}, strict=True)
