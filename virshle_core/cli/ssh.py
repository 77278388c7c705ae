"""``vm ssh``: the ssh command line that reaches a VM at its lease, from anywhere.

A VM on a remote node is usually on that node's private bridge: ssh hops through the
node (``-J``, the same user, host and port the node's ``ssh://`` URL names) to reach
it, as ``ssh -J`` does by hand.

The user, unless ``--user`` names one: the one the VM's user-data names, else its
template's ``ssh_user``, else the one its console says its keys went to (the
``virshle_guest_login`` hook: cloud-init's default user, ``debian`` on Debian), else
root. The guest's host keys are kept apart from the user's ``~/.ssh/known_hosts``: in a
known-hosts file of the VM's own (``~/.cache/virshle/known_hosts/<node>/<uuid>``, under
the name ``virshle-<uuid>``), filled from the keys its console printed when it printed
them (then checked strictly), else learnt at the first login. An address another VM had
before never meets this one's key.
"""

from __future__ import annotations

from ..errors import Conflict, VirshleError


def ssh_argv(client, vm, command: list[str], user: str | None, identity: str | None,
             options: list[str], known_hosts: KnownHosts | None = None) -> list[str]:
    """``ssh [-J node] [-i key] [-o opt]... [user@]address [command...]``; the user's own
    ``-o`` options come first, so that they win (ssh keeps an option's first value)."""
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
    argv = ["ssh"]
    jump = jump_host(client.entry.url)
    if jump:
        argv += ["-J", jump]
    if identity:
        argv += ["-i", identity]
    for option in options:
        argv += ["-o", option]
    if known_hosts is not None:
        for option in known_hosts.options():
            argv += ["-o", option]
    argv.append(f"{user}@{address}" if user else address)
    return argv + command


class KnownHosts:
    """The VM's own known-hosts file, and the ssh options that use it."""

    def __init__(self, path, alias: str, strict: bool):
        self.path, self.alias, self.strict = path, alias, strict

    def options(self) -> list[str]:
        return [f"UserKnownHostsFile={self.path}", f"HostKeyAlias={self.alias}",
                "StrictHostKeyChecking=" + ("yes" if self.strict else "accept-new")]


def login_for(client, vm, user: str | None) -> tuple[str, KnownHosts]:
    """The user to log in as and the VM's known hosts, from what the VM, its template and
    its console say (see the module's docstring)."""
    from ..models import GuestLogin

    learnt = _console_login(client, vm) or GuestLogin()
    if user is None:
        provisioned = (vm.provision or {}).get("user")
        user = (provisioned if provisioned not in (None, "", "default") else None) \
            or _template_user(client, vm) or learnt.user or "root"
    return user, _known_hosts(client, vm, learnt.host_keys)


def _console_login(client, vm):
    """What the ``virshle_guest_login`` hook reads in the end of the VM's console log."""
    from ..hooks import plugins

    tail = client.console_tail(vm.uuid, CONSOLE_TAIL)
    if not tail:
        return None  # no console log: nothing learnt
    return plugins().guest_login(vm=vm, console=tail.decode(errors="replace"))


CONSOLE_TAIL = 256 * 1024
"""Bytes of the console log's end that are read (a boot prints well under this)."""


def _template_user(client, vm) -> str | None:
    try:
        templates = client.templates()
    except VirshleError:
        return None
    return next((t.ssh_user for t in templates if t.name == vm.template), None)


def _known_hosts(client, vm, keys: list[str]) -> KnownHosts:
    """The VM's file: the keys its console printed, else what the first login learns."""
    import os
    from pathlib import Path

    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(cache) / "virshle" / "known_hosts" / client.name
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path, alias = directory / vm.uuid, f"virshle-{vm.uuid}"
    if keys:
        text = "".join(f"{alias} {key}\n" for key in keys)
        if not path.exists() or path.read_text() != text:
            partial = path.with_suffix(".new")
            partial.write_text(text)
            partial.replace(path)
    return KnownHosts(path, alias, strict=bool(keys))


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
