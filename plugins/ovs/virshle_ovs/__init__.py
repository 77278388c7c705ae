"""Net type ``tap``: a tap device on an Open vSwitch bridge (``[ovs]``)."""

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


@hookimpl
def virshle_config_sections(register):
    register("ovs", OvsConfig)
