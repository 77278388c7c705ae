"""The ownership marks on what a node makes on its host.

Several nodes may share one host (one root each: the tests, the demo, anyone trying a
second node), and one bridge. So everything a node makes carries the node's identity,
the uuid kept in ``<root>/node-id``:

- an interface a plugin creates for a NIC has the alias
  ``virshle:<node id>:<vm uuid>:<net name>`` (``mark``);
- its name holds the node's tag, three letters drawn from that id
  (``v<tag><vm id>n<index>``, ``interface_name``), so two roots never pick the same
  name;
- every MAC Virshle gives a NIC starts with ``MAC_PREFIX``.

A node deletes or reaps only what carries its own mark, and reaps only marks whose VM
its store does not know. An interface that looks like Virshle's but carries no node's
mark (one made by a Virshle older than the marks, or by hand) is reported and left
alone; ``virshle node gc`` removes those on request.
"""

from __future__ import annotations

import os

PREFIX = "virshle:"

MAC_PREFIX = "02:76:73"
"""Locally administered, unicast: every MAC Virshle gives a NIC starts with it."""

NODE_ID = "node-id"
"""The file under a node's root that holds its identity."""


def node_id(root) -> str:
    """The node's identity, a uuid kept in ``<root>/node-id`` (made the first time): the
    mark of everything the node makes on the host, and how two entries of a CLI's config
    that reach the same daemon are told apart."""
    import uuid

    path = os.path.join(root, NODE_ID)
    try:
        with open(path) as handle:
            text = handle.read().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    identity = str(uuid.uuid4())
    partial = os.path.join(root, f".{NODE_ID}.partial")
    with open(partial, "w") as handle:
        handle.write(identity + "\n")
    os.chmod(partial, 0o640)  # nothing under the root is for other users
    os.replace(partial, path)
    return identity


def node_tag(identity: str) -> str:
    """Three lowercase letters drawn from a node's identity: its part of interface names."""
    import hashlib

    number = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:4], "big")
    letters = ""
    for _ in range(3):
        number, digit = divmod(number, 26)
        letters += chr(ord("a") + digit)
    return letters


def interface_name(vm_id: int, index: int, tag: str) -> str:
    """``v<tag><id>n<index>``: unique on the host as the node's tag and the VM's id are, and
    at most 15 characters for any id below 10^9."""
    return f"v{tag}{vm_id}n{index}"


def legacy_interface_name(vm_id: int, index: int) -> str:
    """``vm<id>n<index>``, the names given before nodes had tags (kept by their NICs)."""
    return f"vm{vm_id}n{index}"


def looks_like_ours(name: str) -> bool:
    """Whether an interface name has the shape Virshle gives (tagged or from before tags)."""
    import re

    return re.fullmatch(r"v(m|[a-z]{3})[0-9]+n[0-9]+", name) is not None


def mark(vm, net, node) -> str:
    """The mark of the host side of NIC ``net`` of ``vm`` on ``node``."""
    return f"{PREFIX}{node.id}:{vm.uuid}:{net.name}"


def parse(alias: str | None) -> tuple[str | None, str] | None:
    """``(node id, vm uuid)`` of a mark; the node is None for a mark made before marks named
    their node (``virshle:<vm uuid>:<net>``); None when ``alias`` is not a mark."""
    if not alias or not alias.startswith(PREFIX):
        return None
    parts = alias[len(PREFIX):].split(":")
    if len(parts) >= 3 and parts[0] and parts[1]:
        return parts[0], parts[1]
    if len(parts) == 2 and parts[0]:
        return None, parts[0]
    return None


def vm_of(alias: str | None) -> str | None:
    """The VM uuid a mark names, or None when ``alias`` is not a Virshle mark."""
    parsed = parse(alias)
    return parsed[1] if parsed else None


# An interface cannot be created and marked in one step: a daemon killed in between would
# leave an unmarked interface that nothing dares to delete. So a plugin first writes its
# intent into the VM's directory, then creates and marks the interface, then settles the
# intent; an unmarked interface of the intended name is then known to be its own.


def intend(vm, ifname: str) -> None:
    """Say, before creating ``ifname`` for ``vm``, that it is about to be ours."""
    path = os.path.join(vm.dir, f".creating-{ifname}")
    with open(path, "w") as handle:
        handle.write(f"{ifname}\n")


def settle(vm, ifname: str) -> None:
    """The interface now carries its mark (or is gone): the intent is done."""
    try:
        os.unlink(os.path.join(vm.dir, f".creating-{ifname}"))
    except FileNotFoundError:
        pass


def intended(vm, ifname: str) -> bool:
    return os.path.exists(os.path.join(vm.dir, f".creating-{ifname}"))


def owned(alias: str | None, vm, net, ifname: str, node) -> bool:
    """Whether the interface ``ifname`` with ``alias`` is this NIC's on ``node``: marked so
    (or with the mark it had before marks named their node: the VM is this node's), or left
    unmarked by a create that was cut short (its intent is still in the VM's directory)."""
    if alias in (mark(vm, net, node), f"{PREFIX}{vm.uuid}:{net.name}"):
        return True
    return not alias and intended(vm, ifname)


def random_mac() -> str:
    import secrets

    tail = secrets.token_bytes(3)
    return MAC_PREFIX + "".join(f":{b:02x}" for b in tail)
