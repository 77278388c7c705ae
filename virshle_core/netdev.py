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


def claim(vm, net, name: str) -> None:
    """Make ``name`` free for this NIC of ``vm``, then say it is about to be ours.

    An interface of that name left by this NIC (marked, or created but not yet marked)
    is removed; anybody else's is refused and left alone.
    """
    from .marks import intend, owned

    if exists(name):
        mark = alias(name)
        if not owned(mark, vm, net, name):
            raise UsageError(
                f"VM {vm.name!r}: the interface {name} exists and is not Virshle's"
                f" (alias {mark or 'none'}); it is left alone",
                f"Remove or rename {name} yourself, then start the VM again.",
                code="ifname_taken")
        delete(name)
    intend(vm, name)


def reap_unknown(known: set[str], link_kind: str) -> list[str]:
    """Delete the interfaces of ``link_kind`` (``tun``, ``macvtap``) whose ownership mark
    names a VM that is not in ``known``; return their names. Interfaces without a mark
    of ours are never touched."""
    from .marks import vm_of

    reaped = []
    for name in names():
        owner = vm_of(alias(name))
        if owner is not None and owner not in known and kind(name) == link_kind:
            delete(name)
            reaped.append(name)
    return reaped
