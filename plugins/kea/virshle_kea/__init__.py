"""VM addresses from Kea DHCP: ``[dhcp.kea] url``.

The URL is kea-dhcp4's control socket (``unix:///run/kea/kea4-ctrl-socket``),
the control agent (``http://127.0.0.1:8000``), or the seed's
``tcp://host:port`` (the control agent over plain HTTP). ``url6`` (same
forms) adds kea-dhcp6: its leases are matched by the hardware address Kea
records for them.

- listings: one ``lease4-get-all`` per listing, matched to NICs by MAC;
- ``vm rm``: the VM's leases are deleted (``lease4-del``);
- ``node init --net``: leases left by VMs this node removed (their MACs are
  remembered for 30 days: ``node.released_macs()``) are deleted; a lease of
  another node sharing this Kea is never touched.

Kea unreachable: listings still work (no IPs), and a notice says why.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from virshle_core import hookimpl, notice
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
    url6: str | None = attrs.field(default=None, validator=field_check(url_problem))
    timeout: float = 2.0

    def servers(self) -> list[tuple[int, str]]:
        """(family, url) of each configured server."""
        return [(family, url) for family, url in ((4, self.url), (6, self.url6)) if url]


def config_of(node) -> KeaConfig:
    return node.section("dhcp.kea") or KeaConfig()


@hookimpl
def virshle_config_sections(register):
    register("dhcp.kea", KeaConfig)


@hookimpl
def virshle_service_after(config):
    kea = config.section("dhcp.kea")
    if kea is None or not kea.servers():
        return None
    units = ["kea-dhcp4-server.service"] + (["kea-dhcp6-server.service"] if kea.url6 else [])
    if any(url.startswith(("http://", "https://")) for _, url in kea.servers()):
        units.append("kea-ctrl-agent.service")  # the leases are asked through the agent
    return units


@hookimpl
def virshle_node_info(node):
    config = config_of(node)
    return {"dhcp": {"kea": config.url, "kea6": config.url6}}


@hookimpl
def virshle_lease_query(vms, node):
    config = config_of(node)
    macs = {net.mac.lower() for vm in vms for net in vm.nets if net.mac}
    if not config.servers() or not macs:
        return None
    from virshle_core.models import Lease

    from .client import KeaClient, KeaError

    found = []
    for family, url in config.servers():  # one query per server and listing, never per VM
        try:
            leases = KeaClient(url, config.timeout, family).leases()
        except KeaError as exc:
            notice(f"Kea at {url} is unreachable, so IPv{family} addresses are not shown: {exc}")
            continue
        found += [
            Lease(mac=lease["hw-address"].lower(), ip=lease["ip-address"],
                  hostname=lease.get("hostname") or None, family=family,
                  expires=(lease.get("cltt") or 0) + (lease.get("valid-lft") or 0))
            for lease in leases
            if (lease.get("hw-address") or "").lower() in macs and lease.get("state", 0) == 0
        ]
    return found


@hookimpl
def virshle_post_delete(vm, node):
    config = config_of(node)
    macs = {net.mac.lower() for net in vm.nets if net.mac}
    if not config.servers() or not macs:
        return
    from .client import KeaClient, KeaError

    for family, url in config.servers():
        try:
            client = KeaClient(url, config.timeout, family)
            for lease in client.leases():
                if (lease.get("hw-address") or "").lower() in macs:
                    client.delete(lease)
        except KeaError as exc:
            notice(f"VM {vm.name}: its leases could not be deleted from Kea at {url}: {exc}")


@hookimpl
def virshle_node_init(node, parts):
    config = config_of(node)
    if "net" not in parts or not config.servers():
        return
    from .client import KeaClient, KeaError

    released = node.released_macs()  # this node's own: several nodes may share one Kea
    if not released:
        return
    for family, url in config.servers():
        try:
            client = KeaClient(url, config.timeout, family)
            for lease in client.leases():
                if (lease.get("hw-address") or "").lower() in released:
                    client.delete(lease)
        except KeaError as exc:
            notice(f"Kea at {url} is unreachable; orphan leases were not cleaned: {exc}")
