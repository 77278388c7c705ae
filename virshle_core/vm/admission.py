"""The node's admission rule: a create fits under ``[host.limits]``, or is refused.

The node is the authority (the CLI's balancer only guesses): every create
is checked here against the node's own limits, inside the store's write
transaction that inserts its rows, with every row still being created
counted. Concurrent creates therefore cannot jointly overshoot.

A resource's reservation is a sum over the node's VMs: vcpu against the
host's cores, vram against its memory, the disks' virtual sizes against the
filesystem of ``[host] root``. A limit is a percentage of the host: ``cpu =
300`` lets VMs reserve three vcpu per core. Disks count whatever the VM's
state; vcpu and vram count for the VMs that run (``[host.limits] reserve =
"running"``, the default, as libvirt and Incus count), checked again at each
start inside the transaction that marks the VM starting, or for every VM
defined (``reserve = "defined"``), checked at create.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import attrs

from ..errors import Conflict
from ..units import human_size


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


def counts_running(limits: Any) -> bool:
    """Whether only running VMs hold their vcpu and vram (``[host.limits] reserve``)."""
    return getattr(limits, "reserve", "running") == "running"


def _resources(limits: Any, capacity: Capacity, totals: dict[str, int], need: Need) -> list:
    """Each resource: its name, what is reserved, what is needed, the host's total, the
    limit %, how to print an amount of it, and what the whole is."""
    held = "running_" if counts_running(limits) else ""
    return [
        ("cpu", totals[f"{held}vcpu"], need.vcpu, capacity.cpu, limits.cpu, _vcpu,
         f"{capacity.cpu} cores"),
        ("ram", totals[f"{held}vram"], need.vram, capacity.ram, limits.ram, human_size,
         human_size(capacity.ram)),
        ("disk", totals["disk"], need.disk, capacity.disk, limits.disk, human_size,
         f"{human_size(capacity.disk)} under its root"),
    ]


def check(node: str, limits: Any, capacity: Capacity, totals: dict[str, int], need: Need,
          what: str, runs: bool = False) -> None:
    """Raise Conflict (``limit_exceeded``) naming the resource, the figures and the limit.

    ``runs``: what is admitted runs from now on (a start, a running VM's resize, a live
    move); else its vcpu and vram count only when every defined VM's do.
    """
    if counts_running(limits) and not runs:
        need = Need(vcpu=0, vram=0, disk=need.disk)
    for resource, reserved, needed, total, limit, amount, whole in _resources(
            limits, capacity, totals, need):
        allowed = total * limit // 100
        if reserved + needed > allowed:
            raise Conflict(
                f"node {node!r} cannot take {what}: {resource}: {amount(needed)} more would make "
                f"{amount(reserved + needed)} reserved, {_pct(reserved + needed, total)} of its "
                f"{whole}; the limit is {limit}% ({amount(allowed)}, "
                f"{amount(max(0, allowed - reserved))} still free)",
                (f"Stop VMs, or raise [host.limits] {resource} in the node's config.toml."
                 if runs and resource != "disk" else
                 f"Remove VMs, create fewer, or raise [host.limits] {resource} in the node's "
                 "config.toml."), code="limit_exceeded")


def room(limits: Any, capacity: Capacity, totals: dict[str, int], each: Need) -> int | None:
    """How many more VMs that each need ``each`` the node admits now (None: no limit binds,
    as when a template needs nothing of any resource)."""
    counts = [max(0, (total * limit // 100 - reserved) // needed)
              for _, reserved, needed, total, limit, _, _ in _resources(limits, capacity, totals, each)
              if needed > 0]
    return min(counts) if counts else None


def _vcpu(count: int) -> str:
    return f"{count} vcpu"


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "∞%"
