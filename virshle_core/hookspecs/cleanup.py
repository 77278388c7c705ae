"""DHCP and clean-up hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .marker import hookspec

if TYPE_CHECKING:
    from ..models import Lease, NodeContext, Vm


@hookspec
def virshle_lease_query(vms: list[Vm], node: NodeContext) -> list[Lease] | None:
    """Report the IP leases of these VMs' NICs.

    Called once per listing with every VM listed: make one batched query,
    never one per VM. Answers of all plugins are merged, matched to NICs by
    MAC. When the DHCP server is unreachable, log a warning and return None;
    never raise.

    :param vms: the VMs being listed.
    :param node: the local node.
    :returns: the leases found.

    Example::

        @hookimpl
        def virshle_lease_query(vms):
            macs = {net.mac for vm in vms for net in vm.nets if net.mac}
            return [Lease(mac=l["hw-address"], ip=l["ip-address"])
                    for l in all_leases() if l["hw-address"] in macs]
    """


@hookspec
def virshle_post_delete(vm: Vm, node: NodeContext) -> None:
    """Release what the VM held outside its directory (leases, reservations...).

    Called for every plugin after the VM is stopped and its NICs detached,
    before its row is deleted. Must succeed when there is nothing to release.

    :param vm: the VM being removed.
    :param node: the local node.
    :returns: nothing.

    Example::

        @hookimpl
        def virshle_post_delete(vm):
            for net in vm.nets:
                delete_lease(net.mac)
    """
