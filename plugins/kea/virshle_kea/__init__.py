"""VM addresses from Kea DHCP: ``[dhcp.kea] url``.

The URL is kea-dhcp4's control socket (``unix:///run/kea/kea4-ctrl-socket``),
the control agent (``http://127.0.0.1:8000``), or the seed's
``tcp://host:port`` (the control agent over plain HTTP).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from virshle_core import hookimpl
from virshle_core.config import field_check


def url_problem(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return None if parts.path.startswith("/") and not parts.netloc else (
            f'"{url}" must be unix:///absolute/path/to/kea4-ctrl-socket')
    if parts.scheme in ("http", "https", "tcp"):
        try:
            port = parts.port
        except ValueError:
            return f'"{url}" has a bad port'
        if not parts.hostname:
            return f'"{url}" needs a host'
        if parts.scheme == "tcp" and port is None:
            return f'"{url}" needs a port (tcp://host:port)'
        return None
    return f'"{url}" must start with unix://, http://, https:// or tcp://'


@attrs.define
class KeaConfig:
    """``[dhcp.kea]``."""

    url: str | None = attrs.field(default=None, validator=field_check(url_problem))
    timeout: float = 2.0


@hookimpl
def virshle_config_sections(register):
    register("dhcp.kea", KeaConfig)


@hookimpl
def virshle_node_info(node):
    config = node.section("dhcp.kea")
    return {"dhcp": {"kea": config.url if config else None}}
