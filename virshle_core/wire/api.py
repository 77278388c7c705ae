"""What crosses a node's socket, declared once: requests, replies, errors and events.

Every document the daemon sends or takes is one of the classes below. The
daemon writes its replies with them, the client reads them back into them (so
the CLI and Python callers get typed objects, not dicts), and the OpenAPI
document's schemas are generated from them (``daemon/openapi.py``).

They are plain classes on a small base, ``wire.Record``, rather than attrs
classes read through cattrs: the CLI reads them on every listing, and attrs
and cattrs together cost more to import than the whole listing takes
(docs/architecture.md, "Start-up"). ``Record`` knows just the types used
here: ``str``, ``int``, ``float``, ``bool``, ``X | None``, ``list[X]``,
``dict[str, X]``, the choices below (plain strings) and other records.

A reply may carry fields a client does not know (a newer daemon): they are
ignored. A request may not: an unknown field is refused with the list of the
known ones.
"""

from __future__ import annotations

from . import record as wire
from .record import Record, WireError, dump, dump_list  # noqa: F401 -- the API's names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .errorcodes import ErrorCode


class VmState:
    """The states a VM is in, as the node records them (a choice: plain strings, as the
    CLI reads them on every listing without importing ``enum``)."""

    CREATED = "created"    # defined, never booted or booted and stopped by the node
    RUNNING = "running"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"  # powered off from inside, or stopped
    CRASHED = "crashed"    # its VMM died on its own, or the guest panicked
    VALUES = (CREATED, RUNNING, PAUSED, SHUTDOWN, CRASHED)


STATES = VmState.VALUES


wire.TYPES["VmState"] = VmState


def _error_codes() -> type:
    from .errorcodes import ErrorCode

    return ErrorCode


wire.LAZY["ErrorCode"] = _error_codes  # 65 members: 1.6 ms to build, read only for an error


def __getattr__(name: str) -> Any:
    if name == "ErrorCode":
        return wire._named("ErrorCode")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- VMs -----------------------------------------------------------------------------


class Disk(Record):
    """One disk of a VM: its own file on the node."""

    name: str
    path: str
    size: int | None = None
    readonly: bool = False
    format: str = "raw"


class Net(Record):
    """One NIC of a VM: its net type, MAC address and host interface."""

    name: str
    type: str
    mac: str | None = None
    ifname: str | None = None
    options: dict[str, Any] = {}


class Vm(Record):
    """A VM as its node knows it; ``ips`` are its DHCP leases (empty when not asked).

    The one declaration of a VM's fields: the node's own VM (``models.Vm``) extends it
    with what only the node holds, and the store's row is made from both
    (``store/rows.py``). A new field is a line here and a migration."""

    id: int | None
    uuid: str
    name: str
    node: str
    template: str
    state: VmState = "created"
    vcpu: int
    vram: int
    disks: list[Disk] = []
    nets: list[Net] = []
    ips: list[str] = []
    kernel: str | None = None
    initramfs: str | None = None
    cmdline: str | None = None
    firmware: str | None = None
    hypervisor: str | None = None
    provision: dict[str, Any] = {}
    created_at: str = ""
    updated_at: str = ""
    autostart: bool = False
    owner: str = ""
    """The user who created the VM (its name on the node); only they and the node's admins
    act on it."""
    moving_to: str | None = None
    """While the VM moves (``vm migrate``), the node it goes to, by its command line's name."""


class CreateRequest(Record):
    """The body of ``POST /vms``: ``count`` VMs of ``template``; with a ``name`` and a
    count above one, they are named ``NAME-1``, ``NAME-2``...; ``names`` names each (one
    per VM: a create spread over nodes names its share so)."""

    template: str
    name: str | None = None
    count: int = 1
    names: list[str] | None = None
    user_data: str | None = None
    autostart: bool = False


class VmChange(Record):
    """The body of ``PATCH /vms/{ref}``: the settings to change (those given). ``vcpu``
    and ``vram`` (bytes) change a stopped VM's size for its next start, within the
    node's ``[host.limits]``."""

    autostart: bool | None = None
    vcpu: int | None = None
    vram: int | None = None


class RebootRequest(Record):
    """The body of ``POST /vms/{ref}/reboot``: ``force`` resets at once, as the reset
    button does; without it the guest is asked (the ACPI power button, then a reset)."""

    force: bool = False


class DiskResize(Record):
    """The body of ``POST /vms/{ref}/disks/{disk}/resize``: the disk's new size in bytes
    (``size``), or how much to add (``grow``); one of the two. Disks only grow."""

    size: int | None = None
    grow: int | None = None


class Snapshot(Record):
    """A snapshot of a VM: its disks (qcow2 internal snapshots, one per writable disk)
    and, when ``memory`` is true, the running guest's memory and devices. ``size`` is
    what it reserves against ``[host.limits] disk``: its disks' sizes, and its memory."""

    name: str
    vm: str
    memory: bool = False
    state: VmState = "shutdown"
    size: int = 0
    created_at: str = ""
    vcpu: int | None = None
    vram: int | None = None
    """The VM's vcpu and vram when it was taken: its memory restores into that shape alone."""


class SnapshotRequest(Record):
    """The body of ``POST /vms/{ref}/snapshots``: its name; ``memory`` keeps a running
    guest's memory too (restoring it then resumes the guest where it was)."""

    name: str
    memory: bool = False


class CloneRequest(Record):
    """The body of ``POST /vms/{ref}/clone``: the new VM's name (a random one if none)."""

    name: str | None = None
    autostart: bool = False


class CloneLine(Record):
    """One line of ``POST /vms/{ref}/clone`` streamed as NDJSON: progress lines (the
    disks copied), then the new VM (``result``) or the ``error``."""

    progress: Progress | None = None
    result: Vm | None = None
    error: Error | None = None
    status: int | None = None


class StopRequest(Record):
    """The body of ``POST /vms/{ref}/stop``."""

    force: bool = False


class StopResult(Record):
    """What a stop did; ``was_running`` False means it was already stopped (no-op)."""

    vm: Vm
    was_running: bool


class Progress(Record):
    """A line of a streamed create: ``done`` of ``total`` units of ``what`` (bytes copied)."""

    what: str
    done: int
    total: int


class CreateLine(Record):
    """One line of ``POST /vms`` streamed as NDJSON (``Accept: application/x-ndjson``):
    progress lines, then one line with the ``result`` or the ``error`` (and its HTTP
    ``status``)."""

    progress: Progress | None = None
    result: list[Vm] | None = None
    error: Error | None = None
    status: int | None = None


# --- the node: its records are in ``wire/node.py``, named here as the API's ------------

from .node import (  # noqa: E402,F401
    Fit, NodeGcRequest, NodeGcResult, NodeInfo, NodeInitRequest, NodeInitResult, Pong,
    ReloadResult, Template, TemplateDisk, TemplateNet, Usage, VmCount, Cordon, CordonRequest,
)
from .moves import (  # noqa: E402,F401
    MigrateRequest, MigrateResult, Move, MoveBase, MoveFigures, MoveFile,
    MoveOffer, MovePlan, MoveStarted, PerformLine, PerformRequest,
)


class Error(Record):
    """Every failure: ``error`` for scripts, ``message`` for people (which VM or key),
    ``hint`` for what to do."""

    error: ErrorCode
    message: str
    hint: str = ""


# --- events --------------------------------------------------------------------------


class Event(Record):
    """One line of ``GET /events``; ``node`` is the node it happened on."""

    event: str
    node: str


class Hello(Event):
    """The first line of the stream: it is open."""


class StreamDropped(Event):
    """The last line of a stream whose reader fell too far behind; it ends after it."""

    reason: str


class VmEvent(Event):
    vm: Vm


class VmCreated(VmEvent):
    pass


class VmStarted(VmEvent):
    pid: int


class VmStopped(VmEvent):
    force: bool


class VmDeleted(VmEvent):
    pass


class VmStateChanged(VmEvent):
    old: str
    new: str


class NetAttached(VmEvent):
    net: str
    ifname: str | None = None


class NetDetached(VmEvent):
    net: str


class LeaseAcquired(VmEvent):
    ip: str
    mac: str


class VmPaused(VmEvent):
    pass


class VmResumed(VmEvent):
    pass


class VmRebooted(VmEvent):
    force: bool


class SnapshotEvent(VmEvent):
    snapshot: Snapshot


class SnapshotCreated(SnapshotEvent):
    pass


class SnapshotRestored(SnapshotEvent):
    pass


class SnapshotDeleted(SnapshotEvent):
    pass


class VmResized(VmEvent):
    what: str


class NodeInitialized(Event):
    parts: list[str]
    root: str


class VmMigrated(VmEvent):
    """Announced by both nodes of a move: ``side`` says which this one was; ``source`` and
    ``target`` are the nodes' names (as the command line that moved it called them)."""

    side: str
    source: str
    target: str
    live: bool = False


class NodeCordoned(Event):
    """The node was cordoned (``cordoned`` true) or uncordoned."""

    cordoned: bool
    reason: str = ""


EVENTS: dict[str, type[Event]] = {
    "hello": Hello,
    "stream-dropped": StreamDropped,
    "vm-created": VmCreated,
    "vm-started": VmStarted,
    "vm-stopped": VmStopped,
    "vm-deleted": VmDeleted,
    "vm-state-changed": VmStateChanged,
    "vm-paused": VmPaused,
    "vm-resumed": VmResumed,
    "vm-rebooted": VmRebooted,
    "vm-resized": VmResized,
    "snapshot-created": SnapshotCreated,
    "snapshot-restored": SnapshotRestored,
    "snapshot-deleted": SnapshotDeleted,
    "net-attached": NetAttached,
    "net-detached": NetDetached,
    "lease-acquired": LeaseAcquired,
    "node-initialized": NodeInitialized,
    "vm-migrated": VmMigrated,
    "node-cordoned": NodeCordoned,
}


def read_event(data: dict) -> Event:
    """An event line as its class (a plain ``Event`` for a name this client does not know)."""
    return EVENTS.get(data.get("event"), Event).from_json(data)
