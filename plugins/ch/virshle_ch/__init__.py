"""The cloud-hypervisor backend (``[ch]``): its REST API on a unix socket."""

from __future__ import annotations

import shutil

import attrs

from virshle_core import hookimpl


@attrs.define
class ChConfig:
    """``[ch]``: the binary, and the firmware used when a template gives none."""

    binary: str = "cloud-hypervisor"
    firmware: str | None = None


@hookimpl
def virshle_config_sections(register):
    register("ch", ChConfig)


@hookimpl
def virshle_node_info(node):
    config = node.section("ch") or ChConfig()
    return {"ch": {"binary": shutil.which(config.binary)}}
