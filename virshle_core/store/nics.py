"""A VM's NICs in the store: each one's MAC and host interface name, given in the insert's
transaction (unique, so concurrent creates never collide), and the MACs of NICs removed
with their VMs, remembered as this node's (its leases) for ``RELEASED_DAYS``."""

from __future__ import annotations

import sqlite3

from ..errors import Conflict
from ..marks import interface_name, node_id, node_tag, random_mac
from ..models import Vm
from .rows import column

RELEASED_DAYS = 30
"""How long a removed NIC's MAC is remembered as this node's (longer than any lease)."""


class Nics:
    """The NIC rows of a ``Store``."""

    def _allocate_nics(self, vm: Vm) -> None:
        """Give each NIC a unique MAC and host interface name (inside the insert's transaction)."""
        for index, net in enumerate(vm.nets):
            net.ifname = interface_name(vm.id, index, self.tag)
            for _attempt in range(50):
                net.mac = net.mac or random_mac()
                try:
                    self.conn.execute("SAVEPOINT nic")
                    self.conn.execute("INSERT INTO nics VALUES (?, ?, ?, ?)",
                                    [vm.id, net.name, net.mac, net.ifname])
                    self.conn.execute("RELEASE nic")
                    break
                except sqlite3.IntegrityError as exc:
                    self.conn.execute("ROLLBACK TO nic")
                    self.conn.execute("RELEASE nic")
                    if "ifname" in str(exc):
                        raise Conflict(f"interface name {net.ifname} is already taken") from None
                    net.mac = None  # a MAC collision: draw again
            else:
                raise Conflict("could not find a free MAC address after 50 draws")
        if vm.nets:
            self.conn.execute("UPDATE vms SET nets = ? WHERE id = ?",
                            [column(vm, "nets"), vm.id])

    @property
    def tag(self) -> str:
        """The node's tag in interface names (``marks.node_tag``): from ``<root>/node-id``."""
        if self._tag is None:
            self._tag = node_tag(node_id(self.path.parent))
        return self._tag

    def released_macs(self) -> set[str]:
        """MACs of the NICs this node removed with their VMs, in the last ``RELEASED_DAYS``
        days, and gave to no VM since (see ``NodeContext.released_macs``)."""
        with self._lock:
            return {row[0] for row in self.conn.execute(
                "SELECT mac FROM released_nics WHERE mac NOT IN (SELECT lower(mac) FROM nics)")}
