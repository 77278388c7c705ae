"""Net type ``tap``: a tap device on an Open vSwitch bridge (``[ovs]``).

At start, each NIC gets a persistent tap (``vnet_hdr``, single queue, as
QEMU and cloud-hypervisor open it) named by the core (``vm<id>n<index>``),
added to the bridge as a plain port tagged with ``external_ids`` (the node's
identity, VM uuid, net name, creation time). Never an OVS ``type=tap`` port: OVS holds those
and the VMM gets EBUSY. At stop and rm the port and the tap go.

``node init --net`` creates the bridge when it is missing (the kernel
datapath when the ``openvswitch`` module is loaded, else ``netdev``, the
userspace one) and reaps this node's ports and taps of VMs its database does
not know; what names no node is reported, and ``node gc`` removes it.

Every change is logged at ``-vvvv`` as the ``ovs-vsctl`` / ``ip`` command
it is (OVSDB is driven through ``ovs-vsctl`` with argument lists).
"""

from __future__ import annotations

import attrs

from virshle_core import hookimpl
from virshle_core.config import field_check

DATAPATHS = ("auto", "system", "netdev")


@attrs.define
class OvsConfig:
    """``[ovs]``: the bridge VMs' taps join, and how to reach OVSDB."""

    bridge: str = attrs.field(
        default="br0",
        validator=field_check(lambda v: None if 0 < len(v) <= 15 and "/" not in v
                              else f'"{v}" is not an interface name (1-15 characters)'))
    db: str = "unix:/var/run/openvswitch/db.sock"
    datapath: str = attrs.field(
        default="auto",
        validator=field_check(lambda v: None if v in DATAPATHS
                              else f'must be one of {", ".join(DATAPATHS)}'))
    grace: float = 60.0
    """Seconds an unknown port (and its tap) must have existed before node init reaps it."""


def config_of(node) -> OvsConfig:
    return node.section("ovs") or OvsConfig()


@hookimpl
def virshle_config_sections(register):
    register("ovs", OvsConfig)


@hookimpl
def virshle_service_after(config):
    if any(net.type == "tap" for template in config.templates for net in template.net):
        return ["openvswitch-switch.service"]  # its bridge holds the taps
    return None


@hookimpl
def virshle_node_init(node, parts):
    if "net" not in parts:
        return
    import shutil

    from virshle_core import notice

    from .switch import Switch

    if not shutil.which("ovs-vsctl"):
        notice("Open vSwitch is not installed: no bridge was prepared (net type tap needs it; "
               "install the Debian package openvswitch-switch)")
        return
    switch = Switch(config_of(node))
    switch.ensure_bridge()
    switch.reap_orphans(node)


@hookimpl
def virshle_node_gc(node, dry_run):
    import shutil

    if not shutil.which("ovs-vsctl"):
        return None
    from .switch import Switch

    from virshle_core import VirshleError, notice

    switch = Switch(config_of(node))
    try:
        switch.check_running()
    except VirshleError as exc:  # no switch: none of its ports to clean; its taps wait
        notice(f"OVS ports and taps were not looked at: {exc.message}")
        return None
    return switch.gc(node, dry_run)


@hookimpl
def virshle_net_types(node):
    return ["tap"]


@hookimpl
def virshle_net_attach(vm, net, node):
    if net.type != "tap":
        return None
    from .switch import Switch

    return Switch(config_of(node)).attach(vm, net, node)


@hookimpl
def virshle_net_detach(vm, net, node):
    if net.type != "tap":
        return None
    from .switch import Switch

    Switch(config_of(node)).detach(vm, net, node)
    return True


@hookimpl
def virshle_node_info(node):
    config = config_of(node)
    return {"ovs": {"bridge": config.bridge, "db": config.db}}
