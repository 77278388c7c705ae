"""VM addresses from Kea DHCP: ``[dhcp.kea] url``.

The URL is kea-dhcp4's control socket (``unix:///run/kea/kea4-ctrl-socket``),
the control agent (``http://127.0.0.1:8000``), or the seed's
``tcp://host:port`` (the control agent over plain HTTP).

- listings: one ``lease4-get-all`` per listing, matched to NICs by MAC;
- ``vm rm``: the VM's leases are deleted (``lease4-del``);
- ``node init --net``: leases of MACs with Virshle's prefix that belong to
  no VM of this node are deleted.

Kea unreachable: listings still work (no IPs), and a notice says why.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from virshle_core import hookimpl, notice
from virshle_core.config import field_check

MAC_PREFIX = "02:76:73:"  # Virshle's (see virshle_core.store)


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


def config_of(node) -> KeaConfig:
    return node.section("dhcp.kea") or KeaConfig()


@hookimpl
def virshle_config_sections(register):
    register("dhcp.kea", KeaConfig)


@hookimpl
def virshle_node_info(node):
    return {"dhcp": {"kea": config_of(node).url}}


@hookimpl
def virshle_lease_query(vms, node):
    config = config_of(node)
    macs = {net.mac.lower() for vm in vms for net in vm.nets if net.mac}
    if not config.url or not macs:
        return None
    from virshle_core.models import Lease

    from .client import KeaClient, KeaError

    try:
        leases = KeaClient(config.url, config.timeout).leases4()
    except KeaError as exc:
        notice(f"Kea at {config.url} is unreachable, so IPs are not shown: {exc}")
        return None
    return [
        Lease(mac=lease["hw-address"].lower(), ip=lease["ip-address"],
              hostname=lease.get("hostname") or None,
              expires=(lease.get("cltt") or 0) + (lease.get("valid-lft") or 0))
        for lease in leases
        if lease.get("hw-address", "").lower() in macs and lease.get("state", 0) == 0
    ]


@hookimpl
def virshle_post_delete(vm, node):
    config = config_of(node)
    macs = {net.mac.lower() for net in vm.nets if net.mac}
    if not config.url or not macs:
        return
    from .client import KeaClient, KeaError

    try:
        client = KeaClient(config.url, config.timeout)
        for lease in client.leases4():
            if lease.get("hw-address", "").lower() in macs:
                client.delete4(lease["ip-address"])
    except KeaError as exc:
        notice(f"VM {vm.name}: its leases could not be deleted from Kea at {config.url}: {exc}")


@hookimpl
def virshle_node_init(node, parts):
    config = config_of(node)
    if "net" not in parts or not config.url:
        return
    from .client import KeaClient, KeaError

    known = {net.mac.lower() for vm in node.list_vms() for net in vm.nets if net.mac}
    try:
        client = KeaClient(config.url, config.timeout)
        for lease in client.leases4():
            mac = lease.get("hw-address", "").lower()
            if mac.startswith(MAC_PREFIX) and mac not in known:
                client.delete4(lease["ip-address"])
    except KeaError as exc:
        notice(f"Kea at {config.url} is unreachable; orphan leases were not cleaned: {exc}")
