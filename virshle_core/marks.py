"""The ownership mark on what Virshle makes on a host.

Every interface a plugin creates for a NIC carries the alias
``virshle:<vm uuid>:<net name>``. Plugins delete or reap only what carries
a mark, and reap only marks whose VM the node's database does not know, so
nothing another program made is ever touched.
"""

from __future__ import annotations

PREFIX = "virshle:"


def mark(vm, net) -> str:
    """The mark of the host side of NIC ``net`` of ``vm``."""
    return f"{PREFIX}{vm.uuid}:{net.name}"


def vm_of(alias: str | None) -> str | None:
    """The VM uuid a mark names, or None when ``alias`` is not a Virshle mark."""
    if not alias or not alias.startswith(PREFIX):
        return None
    return alias[len(PREFIX):].split(":", 1)[0] or None
