"""The node's admission rule: a create fits under ``[host.limits]``, or is refused.

The node is the authority (the CLI's balancer only guesses): every create
is checked here against the node's own limits, inside the store's write
transaction that inserts its rows, with every row still being created
counted. Concurrent creates therefore cannot jointly overshoot.

A resource's reservation is the sum over the node's VMs, whatever their
state: vcpu against the host's cores, vram against its memory, the disks'
virtual sizes against the filesystem of ``[host] root``. A limit is a
percentage of the host: ``cpu = 300`` lets VMs reserve three vcpu per core.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import attrs

from .errors import Conflict
from .units import human_size


@attrs.define
class Capacity:
    """What the host has: cores, bytes of memory, bytes of disk under the root."""

    cpu: int
    ram: int
    disk: int

    @classmethod
    def of_host(cls, root: str) -> "Capacity":
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return cls(cpu=os.cpu_count() or 1, ram=ram, disk=shutil.disk_usage(root).total)


@attrs.define
class Need:
    """What a create asks for, in all."""

    vcpu: int
    vram: int
    disk: int


def check(node: str, limits: Any, capacity: Capacity, totals: dict[str, int], need: Need,
          what: str) -> None:
    """Raise Conflict (``limit_exceeded``) naming the resource, the figures and the limit."""
    def refuse(resource: str, text: str) -> None:
        raise Conflict(
            f"node {node!r} cannot take {what}: {resource}: {text}",
            f"Remove VMs, create fewer, or raise [host.limits] {resource} in the node's "
            "config.toml.", code="limit_exceeded")

    allowed_vcpu = capacity.cpu * limits.cpu // 100
    if totals["vcpu"] + need.vcpu > allowed_vcpu:
        refuse("cpu", f"{need.vcpu} more vcpu would make {totals['vcpu'] + need.vcpu} reserved, "
                      f"{_pct(totals['vcpu'] + need.vcpu, capacity.cpu)} of its {capacity.cpu} "
                      f"cores; the limit is {limits.cpu}% ({allowed_vcpu} vcpu, "
                      f"{max(0, allowed_vcpu - totals['vcpu'])} still free)")
    allowed_ram = capacity.ram * limits.ram // 100
    if totals["vram"] + need.vram > allowed_ram:
        refuse("ram", f"{human_size(need.vram)} more would make "
                      f"{human_size(totals['vram'] + need.vram)} reserved, "
                      f"{_pct(totals['vram'] + need.vram, capacity.ram)} of its "
                      f"{human_size(capacity.ram)}; the limit is {limits.ram}% "
                      f"({human_size(allowed_ram)}, "
                      f"{human_size(max(0, allowed_ram - totals['vram']))} still free)")
    allowed_disk = capacity.disk * limits.disk // 100
    if totals["disk"] + need.disk > allowed_disk:
        refuse("disk", f"{human_size(need.disk)} more would make "
                       f"{human_size(totals['disk'] + need.disk)} reserved, "
                       f"{_pct(totals['disk'] + need.disk, capacity.disk)} of the "
                       f"{human_size(capacity.disk)} under its root; the limit is {limits.disk}% "
                       f"({human_size(max(0, allowed_disk - totals['disk']))} still free)")


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "∞%"
