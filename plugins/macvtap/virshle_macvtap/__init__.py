"""Net type ``mac_v_tap``: a macvtap in bridge mode on an upstream link (``[macvtap]``)."""

from __future__ import annotations

import attrs

from virshle_core import hookimpl


@attrs.define
class MacvtapConfig:
    """``[macvtap]``: the default parent link (else the default route's interface)."""

    link: str | None = None


@hookimpl
def virshle_config_sections(register):
    register("macvtap", MacvtapConfig)
