"""Network hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .marker import hookspec

if TYPE_CHECKING:
    from ..models import Net, NetAttachment, NodeContext, Vm


@hookspec(firstresult=True)
def virshle_net_attach(vm: Vm, net: Net, node: NodeContext) -> NetAttachment | None:
    """Create the host side of one NIC (a tap on a bridge, a macvtap...).

    Called before the VMM starts, once per NIC. Return None when ``net.type``
    is not yours: a start whose net type no plugin owns fails with the list of
    plugins that attach nets. ``net.mac`` and ``net.ifname`` are already
    allocated (unique, stable, at most 15 characters). Put descriptors the VMM
    must inherit in ``NetAttachment.fds`` (the core closes its copies once the
    VMM started), and set ``NetAttachment.offload = False`` when the host side
    cannot take partial checksums.

    Stops at first non-None result.

    :param vm: the VM being started.
    :param net: the NIC, with its type, options, MAC and interface name.
    :param node: the local node.
    :returns: what was made; handed back to ``virshle_net_detach`` if the start
        fails later.

    Example::

        @hookimpl
        def virshle_net_attach(vm, net, node):
            if net.type != "tap":
                return None
            make_tap(net.ifname)
            return NetAttachment(net=net.name, type="tap", ifname=net.ifname, mac=net.mac)
    """


@hookspec(firstresult=True)
def virshle_net_detach(
    vm: Vm, net: Net, attachment: NetAttachment | None, node: NodeContext
) -> bool | None:
    """Remove the host side of one NIC; must succeed when it is already gone.

    Stops at first non-None result.

    :param vm: the VM being stopped or removed.
    :param net: the NIC.
    :param attachment: what ``virshle_net_attach`` returned, when this
        detach undoes a start that failed; None when a VM is stopped or
        removed (attachments are not kept): rebuild what you need from
        ``net`` (its ``ifname``, your mark on the interface).
    :param node: the local node.
    :returns: True when ``net.type`` is yours and it is removed, else None.

    Example::

        @hookimpl
        def virshle_net_detach(net):
            if net.type != "tap":
                return None
            delete_tap_if_exists(net.ifname)
            return True
    """
