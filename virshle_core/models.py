"""The objects hooks receive and return: a VM, its disks and NICs, a node.

These are the public names plugins are written against (with
``virshle_core.hookimpl`` and the errors). A VM, its disks and NICs are the wire
documents of ``wire.api`` (their fields are declared there, once) with what only the
node holds; the others are attrs classes. Each turns into JSON with ``to_json()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import attrs

from .wire import api
from .wire.api import STATES as VM_STATES  # noqa: F401 -- its first home, for plugins

if TYPE_CHECKING:
    from .config import Config


class Disk(api.Disk):
    """One disk of a VM: its own file under ``<root>/vm/<uuid>/disk/<name>``; ``source``
    (the node's alone) is the image it was made from."""

    __wire__ = False
    source: str | None = None


class Net(api.Net):
    """One NIC of a VM: its net type (``tap``, ``mac_v_tap``...), MAC and host interface."""

    __wire__ = False


class Vm(api.Vm):
    """A virtual machine as the node knows it: the VM document (``api.Vm``, where its
    fields are declared) and what only its node holds.

    ``state`` is the last state the node read from the VMM through
    ``virshle_vm_state``; ``ips`` is filled from ``virshle_lease_query``;
    ``pending`` names the operation in flight on it (``creating``,
    ``starting``, ``stopping``, ``deleting``...), the node's journal;
    ``provision`` says what ``virshle_provision`` prepared for its first boot.
    """

    __wire__ = False
    __transient__ = ("node", "dir", "ips")
    """Fields the store does not keep: the node's name, the directory under today's root,
    the leases."""

    disks: list[Disk] = []
    nets: list[Net] = []
    user_data: str | None = None
    dir: str = ""
    pending: str | None = None
    owner_uid: int = 0
    """The uid that created the VM (root's for VMs from before owners)."""

    @property
    def owner(self) -> str:
        """The name of the VM's owner on this host."""
        return user_name(self.owner_uid)

    @property
    def moving_to(self) -> str | None:
        """The node the VM moves to, from its journal (``migrating:<id>:<node>``)."""
        kind, _, rest = (self.pending or "").partition(":")
        return rest.partition(":")[2] or None if kind in ("migrating", "migrated") else None

    @property
    def move_id(self) -> str | None:
        """The id of the move under way on this VM, on either side."""
        kind, _, rest = (self.pending or "").partition(":")
        return rest.partition(":")[0] if kind in ("migrating", "migrated", "incoming") else None

    @property
    def path(self) -> Path:
        """The VM's own directory, ``<root>/vm/<uuid>``."""
        return Path(self.dir)


_user_names: dict[int, str] = {}


def user_name(uid: int) -> str:
    """The name of ``uid`` on this host (its number when it has none), looked up once."""
    name = _user_names.get(uid)
    if name is None:
        import pwd

        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        _user_names[uid] = name
    return name


@attrs.define
class NetAttachment:
    """What ``virshle_net_attach`` made on the host for one NIC.

    ``ifname`` is the host interface (tap or macvtap); ``fds`` are open file
    descriptors the VMM must inherit (macvtap); ``offload`` is False when the
    host side cannot take partial checksums (OVS's userspace datapath), so
    the VMM must not offer checksum offload to the guest. It is handed back
    to ``virshle_net_detach`` only when a failed start is undone: a plugin
    rebuilds what it needs from the ``Net`` (its ``ifname``, its mark).
    """

    net: str
    type: str
    ifname: str | None = None
    mac: str | None = None
    fds: list[int] = attrs.Factory(list)
    offload: bool = True


@attrs.define
class ClonedDisk:
    """What ``virshle_disk_clone`` made: the disk's format (``raw``, ``qcow2``) and its
    size as the guest sees it, in bytes."""

    format: str
    size: int | None = None


@attrs.define
class VmmHandle:
    """What ``virshle_start`` started: the VMM process, and the hypervisor (the plugin's
    entry point name) that the VM is recorded under."""

    pid: int
    hypervisor: str


class VmWatch:
    """A hypervisor plugin's live link to one running VMM (see ``virshle_vm_watch``).

    The daemon runs ``follow`` on its event loop for as long as the VMM
    lives, and learns every state change from it: no listing ever asks the
    VMM. Subclass it; every method is a coroutine run on the daemon's loop,
    so none may block (use the VMM's event stream and ``os.pidfd_open``).
    """

    async def follow(self, report: "Callable[[str], None]") -> str:
        """Follow the VMM until it ends; ``report(state)`` each state it enters.

        :param report: call it with ``running``, ``paused``, ``shutdown`` or
            ``crashed`` whenever the VM enters that state (the guest paused,
            powered off, panicked...).
        :returns: the state the VM ended in: ``shutdown`` when it powered off
            or was stopped, ``crashed`` when the VMM died on its own.
        """
        raise NotImplementedError

    async def stop(self, force: bool, timeout: float) -> None:
        """Stop the VMM, and return once it has exited (and is reaped).

        :param force: kill it at once, instead of pressing the power button
            and killing it after ``timeout`` seconds.
        :param timeout: how long the guest may take to power off.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Let go of the VMM (the daemon stops): it keeps running."""


@attrs.define
class ConsoleEndpoint:
    """Where a VM's serial console is: a unix socket to connect to, and its log file."""

    socket: str | None = None
    log: str | None = None


@attrs.define
class VmStats:
    """What a running VM's VMM counts (``virshle_vm_stats``): its process's cpu time and
    resident memory, and each disk's ``{"name", "read_bytes", "written_bytes", "reads",
    "writes"}`` since the VMM started."""

    cpu_seconds: float
    rss_bytes: int
    disks: list[dict] = attrs.Factory(list)


@attrs.define
class GuestLogin:
    """How to log in to a guest, as its console says (``virshle_guest_login``): the user
    its keys went to, and its SSH host keys (``"ssh-ed25519 AAAA..."``)."""

    user: str | None = None
    host_keys: list[str] = attrs.Factory(list)


@attrs.define
class Lease:
    """A DHCP lease of one VM NIC, as reported by ``virshle_lease_query``."""

    mac: str
    ip: str
    hostname: str | None = None
    expires: int | None = None
    family: int = 4

    def to_json(self) -> dict:
        return attrs.asdict(self)


@attrs.define
class NodeContext:
    """The node a hook runs on: its name, its root directory and the configuration.

    Plugins read their own table with ``node.config.section("ovs")``, and the node's
    VMs with ``node.vms()``.
    """

    name: str
    config: "Config"
    store: Any = attrs.field(default=None, repr=False, eq=False)
    """The node's open store, where one is (the daemon; ``node init``), else None."""
    _id: str = attrs.field(default="", alias="id", repr=False)

    @property
    def root(self) -> Path:
        return self.config.host.root_path

    @property
    def id(self) -> str:
        """The node's identity (``<root>/node-id``): the mark of what it makes on the host
        (``virshle_core.marks``)."""
        if not self._id:
            from .marks import node_id

            self._id = node_id(self.root)
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    def section(self, name: str) -> Any:
        return self.config.section(name)

    def vms(self) -> list["Vm"]:
        """Every VM this node's store knows (plugins use it to tell their orphans); none
        where no store is open."""
        return self.store.all() if self.store is not None else []

    list_vms = vms  # its first name, for plugins written against it

    def uuids(self) -> set[str]:
        """The uuid of every VM row of this node, those still being created too: what a
        plugin must never reap."""
        return self.store.uuids() if self.store is not None else set()

    def released_macs(self) -> set[str]:
        """The MACs of NICs this node gave and has since removed with their VM (for the last
        30 days): the leases a DHCP plugin may reap as this node's own."""
        return self.store.released_macs() if self.store is not None else set()


@attrs.define
class NodeCandidate:
    """A node offered to ``virshle_choose_node``.

    ``status`` is ``online`` for a usable node (``cordoned`` for one its admin set
    aside with ``node cordon``, ``offline`` and the like for one not reached); ``info`` is its ``node info``
    document (``saturated``, the templates it offers with whether each fits,
    resource figures); ``in_flight`` counts creates already sent to it in
    this run; the placement plugin sets ``refused`` on the nodes it would
    not choose, and the user reads it when no node was chosen.
    """

    name: str
    weight: int = 1
    status: str = "online"
    info: dict[str, Any] = attrs.Factory(dict)
    in_flight: int = 0
    refused: str = ""
    """Why the placement plugin did not choose this node; shown when none was chosen."""

    @property
    def saturated(self) -> bool:
        return bool(self.info.get("saturated"))

    @property
    def saturation(self) -> str:
        """``saturated: cpu 400% reserved (limit 300%)``, from the node's info."""
        full = []
        for resource in ("cpu", "ram", "disk"):
            figures = self.info.get(resource) or {}
            reserved, limit = figures.get("reserved_pct"), figures.get("limit_pct")
            if reserved is not None and limit and reserved >= limit:
                full.append(f"{resource} {reserved:g}% reserved (limit {limit:g}%)")
        return "saturated: " + ", ".join(full) if full else "saturated"


@attrs.define
class ApiRoute:
    """A route a plugin serves on the node's API (``virshle_routes``), under
    ``/api/v1/x/<plugin>``: ``handler`` is ``async def handler(request, node)``."""

    method: str
    path: str
    handler: Callable[..., Any]
    summary: str = ""
    content_type: str | None = None
    """What it answers when not JSON (``text/plain``), for the OpenAPI document."""


@attrs.define
class Reply:
    """What a plugin's route answers, when it is not JSON (or not 200)."""

    body: Any
    status: int = 200
    content_type: str = "application/json"


@attrs.define
class Service:
    """Long-running work a plugin runs in the node daemon (``virshle_services``):
    ``run`` is ``async def run(node)``, cancelled when the daemon stops."""

    name: str
    run: Callable[..., Any]
