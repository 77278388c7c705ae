"""Linux network interfaces, for NIC plugins: sysfs to look, iproute2's ``ip`` to change.

The plugins once used pyroute2 for this. It cost the daemon 8 to 13 MiB of resident
memory (its netlink message tables, loaded once and kept) for a handful of calls per
VM start; ``ip`` does each in about 2 ms, and what it runs is what the debug log shows,
so an operator can repeat it by hand.
"""

from __future__ import annotations

import os
import subprocess

from .errors import UsageError, VirshleError
from .log import log_command

SYS = "/sys/class/net"


def exists(name: str) -> bool:
    return os.path.exists(f"{SYS}/{name}")


def names() -> list[str]:
    try:
        return os.listdir(SYS)
    except FileNotFoundError:
        return []


def alias(name: str) -> str | None:
    """The interface's alias (``ip link set NAME alias TEXT``), None when it has none."""
    try:
        with open(f"{SYS}/{name}/ifalias") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def index(name: str) -> int:
    with open(f"{SYS}/{name}/ifindex") as handle:
        return int(handle.read())


def kind(name: str) -> str | None:
    """``tun`` for tun/tap devices, else the kernel's DEVTYPE (``macvtap``, ``bridge``…)."""
    if os.path.exists(f"{SYS}/{name}/tun_flags"):
        return "tun"
    try:
        with open(f"{SYS}/{name}/uevent") as handle:
            for line in handle:
                if line.startswith("DEVTYPE="):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def default_route_link() -> str | None:
    """The interface of the IPv4 default route (``/proc/net/route``), if there is one."""
    try:
        with open("/proc/net/route") as handle:
            next(handle, None)
            for line in handle:
                fields = line.split()
                if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
                    return fields[0]
    except OSError:
        pass
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip ARGS``; a failure raises with what ``ip`` said."""
    argv = ["ip", *args]
    log_command(argv)
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except FileNotFoundError:
        raise VirshleError("`ip` (iproute2) is not installed",
                           "Install the iproute2 package.", code="iproute2_missing") from None
    if check and result.returncode != 0:
        raise VirshleError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}",
                           code="ip_failed")
    return result


def delete(name: str) -> None:
    """Remove the interface if it is there (it may have gone with its VMM)."""
    if exists(name):
        result = ip("link", "del", name, check=False)
        if result.returncode != 0 and exists(name):
            raise VirshleError(f"`ip link del {name}` failed: {result.stderr.strip()}",
                               code="ip_failed")


def claim(vm, net, name: str, node) -> None:
    """Make ``name`` free for this NIC of ``vm`` on ``node``, then say it is about to be ours.

    An interface of that name left by this NIC (marked, or created but not yet marked)
    is removed; anybody else's is refused and left alone.
    """
    from .errors import cut
    from .marks import intend, owned

    if exists(name):
        mark = alias(name)
        if not owned(mark, vm, net, name, node):
            raise UsageError(
                f"VM {vm.name!r}: the interface {name} exists and is not this node's"
                f" (alias {cut(mark or 'none')}); it is left alone",
                f"Remove or rename {name} yourself (`virshle node gc --dry-run` shows Virshle's "
                "strays), then start the VM again.",
                code="ifname_taken")
        delete(name)
    intend(vm, name)


def sort_out(node, link_kind: str) -> tuple[list[str], list[str]]:
    """The interfaces of ``link_kind`` (``tun``, ``macvtap``) that are ``node``'s orphans,
    and its strays.

    An orphan carries this node's mark for a VM its store does not know: the node may
    delete it. A stray looks like Virshle's (by its name or a mark from before marks
    named their node) but is no VM's of this node: it is reported, and only ``node gc``
    removes it. Interfaces marked by another node are neither: they are left alone.
    """
    from .marks import looks_like_ours, parse

    known = node.uuids()
    orphans, strays = [], []
    for name in names():
        mark = alias(name)
        parsed = parse(mark)
        if parsed is None and not (looks_like_ours(name) and not mark):
            continue  # somebody else's interface (or ours being made: marked at once)
        if kind(name) != link_kind:
            continue
        if parsed is None:
            if not _intended_here(node, name):
                strays.append(name)
        elif parsed[0] == node.id:
            if parsed[1] not in known:
                orphans.append(name)
        elif parsed[0] is None and parsed[1] not in known:
            strays.append(name)
    return orphans, strays


def _intended_here(node, name: str) -> bool:
    """An unmarked interface that one of this node's VMs is making (its intent is there)."""
    from .marks import intended

    return any(intended(vm, name) for vm in node.vms() for net in vm.nets if net.ifname == name)


def reap_unknown(node, link_kind: str, spare: frozenset[str] = frozenset()) -> list[str]:
    """Delete ``node``'s orphan interfaces of ``link_kind`` (but those in ``spare``, still
    in a plugin's grace period); log its strays, which stay. Return the deleted names."""
    orphans, strays = sort_out(node, link_kind)
    reaped = []
    for name in orphans:
        if name not in spare:
            delete(name)
            reaped.append(name)
    if strays:
        from .notices import notice

        notice(f"left alone: {', '.join(sorted(strays))} look like Virshle's ({link_kind}) but "
               "carry no node's mark; `virshle node gc --dry-run` lists what it would remove")
    return reaped
