"""``vm ssh``: the ssh command line that reaches a VM at its lease, from anywhere.

A VM on a remote node is usually on that node's private bridge: ssh hops through the
node (``-J``, the same user, host and port the node's ``ssh://`` URL names) to reach
it, as ``ssh -J`` does by hand.
"""

from __future__ import annotations

from ..errors import Conflict, VirshleError


def ssh_argv(client, vm, command: list[str], user: str | None, identity: str | None,
             options: list[str]) -> list[str]:
    """``ssh [-J node] [-i key] [-o opt]... [user@]address [command...]``."""
    if vm.state not in ("running", "paused"):
        raise Conflict(f"VM {vm.name!r} is {vm.state}: there is nothing to log in to",
                       f"Start it with `virshle vm start {vm.name}`.", code="vm_not_running")
    address = address_of(vm)
    if address is None:
        raise VirshleError(
            f"VM {vm.name!r} has no address: no DHCP server has leased one to it yet",
            "It may still be booting (`virshle vm logs {0}`), or its node has no DHCP "
            "plugin set up ([dhcp.kea]); `virshle vm ls -v` shows the leases.".format(vm.name),
            code="no_address")
    if user is None:
        provisioned = (vm.provision or {}).get("user")
        user = provisioned if provisioned not in (None, "", "default") else None
    argv = ["ssh"]
    jump = jump_host(client.entry.url)
    if jump:
        argv += ["-J", jump]
    if identity:
        argv += ["-i", identity]
    for option in options:
        argv += ["-o", option]
    argv.append(f"{user}@{address}" if user else address)
    return argv + command


def address_of(vm) -> str | None:
    """The VM's first IPv4 lease, else its first lease."""
    ips = list(vm.ips or [])
    return next((ip for ip in ips if ":" not in ip), ips[0] if ips else None)


def jump_host(url: str) -> str | None:
    """``user@host:port`` of an ``ssh://`` node URL; None for a local node."""
    if not url.startswith("ssh://"):
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    where = f"{parts.username}@{host}" if parts.username else host
    return f"{where}:{parts.port}" if parts.port else where
