"""Net type ``mac_v_tap`` (or ``macvtap``, as upstream Virshle's configs also spell it):
a macvtap in bridge mode on an upstream link (``[macvtap]``).

The parent link is the net's own option (``[template.vm.net.type.mac_v_tap]
link = "eth0"``), else ``[macvtap] link``, else the interface of the default
route. The macvtap carries the VM's MAC; its character device
``/dev/tap<ifindex>`` is opened here and the descriptor handed to the VMM
(QEMU ``-netdev tap,fd=N``). The upstream network's DHCP server gives the VM
its address; the host itself cannot reach the VM through the macvtap (no
hairpin), which is how macvtap works.
"""

from __future__ import annotations

import attrs

from virshle_core import hookimpl


@attrs.define
class MacvtapConfig:
    """``[macvtap]``: the default parent link (else the default route's interface)."""

    link: str | None = None


TYPES = ("mac_v_tap", "macvtap")


def config_of(node) -> MacvtapConfig:
    return node.section("macvtap") or MacvtapConfig()


@hookimpl
def virshle_config_sections(register):
    register("macvtap", MacvtapConfig)


@hookimpl
def virshle_net_types(node):
    return list(TYPES)


@hookimpl
def virshle_net_attach(vm, net, node):
    if net.type not in TYPES:
        return None
    from .link import attach

    return attach(vm, net, net.options.get("link") or config_of(node).link, node)


@hookimpl
def virshle_net_detach(vm, net, node):
    if net.type not in TYPES:
        return None
    from .link import detach

    detach(vm, net, node)
    return True


@hookimpl
def virshle_node_init(node, parts):
    if "net" not in parts:
        return
    from .link import reap_orphans

    reap_orphans(node)


@hookimpl
def virshle_node_gc(node, dry_run):
    from .link import gc

    return gc(node, dry_run)
