"""Who is asking, and what they may do: owners for VMs.

The node's socket is mode 0660, group ``virshle``: its members reach the API. Each VM
records the uid that created it, read from the socket with ``SO_PEERCRED`` (over an
``ssh://`` node, the peer is sshd's process for the login user, so it is that user).

- Root, the daemon's own user and the members of ``[host] admin_group`` (default
  ``virshle-admin``) act on every VM, and on the node itself (``node init``, ``gc``,
  ``reload``).
- Any other member acts only on its own VMs: listings, events, info, logs, console,
  every verb and ``rm`` see and touch nothing else. Another's VM is a 403 ``not_owner``,
  one line, and nothing changes. Templates and node info are everyone's.

The caller is a context variable set for each request by the route table (``routes.py``),
so every way to a VM (``Node.find``, and ``Node.locked`` through it) checks it; work the
daemon does by itself (autostart, the tracker) has no caller and may do everything.
"""

from __future__ import annotations

import contextvars
import os
import socket
import struct

from ..errors import VirshleError
from ..models import user_name


class Forbidden(VirshleError):
    """The caller may not act on this (another user's VM, the node itself). HTTP 403."""

    code = "not_owner"
    http_status = 403


class Caller:
    """The user behind one connection: a uid, its name, and whether it is an admin."""

    __slots__ = ("uid", "name", "admin")

    def __init__(self, uid: int, name: str, admin: bool):
        self.uid, self.name, self.admin = uid, name, admin

    def __repr__(self) -> str:
        return f"Caller({self.name}, uid {self.uid}{', admin' if self.admin else ''})"


CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("virshle_caller", default=None)


def peer(sock: socket.socket | None, admin_group: str) -> Caller | None:
    """The user at the other end of a unix socket (``SO_PEERCRED``); None when it cannot be
    told (not a unix socket)."""
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    try:
        _, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    except OSError:
        return None
    name = user_name(uid)
    return Caller(uid, name, is_admin(uid, name, gid, admin_group))


def is_admin(uid: int, name: str, gid: int, admin_group: str) -> bool:
    if uid in (0, os.geteuid()):
        return True
    import grp

    try:
        group = grp.getgrnam(admin_group)
    except KeyError:
        return False
    return gid == group.gr_gid or name in group.gr_mem


def caller() -> Caller | None:
    return CALLER.get()


def owner_uid() -> int:
    """The uid a VM created now belongs to: the caller's, or root's for the daemon's own work."""
    who = CALLER.get()
    return who.uid if who is not None else 0


def may_see(owner: int) -> bool:
    who = CALLER.get()
    return who is None or who.admin or who.uid == owner


def check_owner(vm) -> None:
    """Refuse (403 ``not_owner``) a caller who is neither the VM's owner nor an admin."""
    who = CALLER.get()
    if who is None or who.admin or who.uid == vm.owner_uid:
        return
    raise Forbidden(
        f"VM {vm.name!r} belongs to {vm.owner}; you ({who.name}) may act only on your own VMs",
        "Ask its owner, or an admin of this node (root, or a member of [host] admin_group).")


def check_admin(what: str, admin_group: str) -> None:
    """Refuse (403 ``not_admin``) what only an admin may do to the node."""
    who = CALLER.get()
    if who is None or who.admin:
        return
    raise Forbidden(f"{what} is for the node's admins; you ({who.name}) are not one",
                    f"Run it as root, or as a member of the group {admin_group!r}.",
                    code="not_admin")
