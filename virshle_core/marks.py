"""The ownership marks on what Virshle makes on a host.

Every interface a plugin creates for a NIC carries the alias
``virshle:<vm uuid>:<net name>``, and every MAC Virshle gives a NIC starts
with ``MAC_PREFIX``. Plugins delete or reap only what carries a mark, and
reap only marks whose VM the node's database does not know, so nothing
another program made is ever touched.
"""

from __future__ import annotations

PREFIX = "virshle:"

MAC_PREFIX = "02:76:73"
"""Locally administered, unicast: every MAC Virshle gives a NIC starts with it."""


def mark(vm, net) -> str:
    """The mark of the host side of NIC ``net`` of ``vm``."""
    return f"{PREFIX}{vm.uuid}:{net.name}"


def vm_of(alias: str | None) -> str | None:
    """The VM uuid a mark names, or None when ``alias`` is not a Virshle mark."""
    if not alias or not alias.startswith(PREFIX):
        return None
    return alias[len(PREFIX):].split(":", 1)[0] or None


# An interface cannot be created and marked in one step: a daemon killed in between would
# leave an unmarked interface that nothing dares to delete. So a plugin first writes its
# intent into the VM's directory, then creates and marks the interface, then settles the
# intent; an unmarked interface of the intended name is then known to be its own.


def intend(vm, ifname: str) -> None:
    """Say, before creating ``ifname`` for ``vm``, that it is about to be ours."""
    import os

    path = os.path.join(vm.dir, f".creating-{ifname}")
    with open(path, "w") as handle:
        handle.write(f"{ifname}\n")


def settle(vm, ifname: str) -> None:
    """The interface now carries its mark (or is gone): the intent is done."""
    import os

    try:
        os.unlink(os.path.join(vm.dir, f".creating-{ifname}"))
    except FileNotFoundError:
        pass


def owned(alias: str | None, vm, net, ifname: str) -> bool:
    """Whether the interface ``ifname`` with ``alias`` is this NIC's: marked so, or left
    unmarked by a create that was cut short (its intent is still in the VM's directory)."""
    import os

    if alias == mark(vm, net):
        return True
    return not alias and os.path.exists(os.path.join(vm.dir, f".creating-{ifname}"))


def random_mac() -> str:
    import secrets

    tail = secrets.token_bytes(3)
    return MAC_PREFIX + "".join(f":{b:02x}" for b in tail)


def interface_name(vm_id: int, index: int) -> str:
    """``vm<id>n<index>``: unique as the id is, and at most 15 characters for any id below 10^10."""
    return f"vm{vm_id}n{index}"
