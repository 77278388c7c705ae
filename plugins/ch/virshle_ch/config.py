"""``[ch]``: the plugin's settings."""

from __future__ import annotations

import attrs

NAME = "ch"


@attrs.define
class ChConfig:
    """``[ch]``: the binary, and the firmware used when a template gives none."""

    binary: str = "cloud-hypervisor"
    firmware: str | None = None


def config_of(node) -> ChConfig:
    return node.section("ch") or ChConfig()
