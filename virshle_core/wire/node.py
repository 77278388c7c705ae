"""The documents of the node itself: its ping, its health, its templates, and what
``node init``, ``gc`` and ``reload`` answer (``api`` names them as its own)."""

from __future__ import annotations

from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Pong(Record):
    """``GET /node/ping``; ``id`` is the node's identity (``<root>/node-id``), the same
    through every URL that reaches it."""

    pong: bool
    node: str
    version: str
    id: str | None = None
    cordoned: bool = False


class Usage(Record):
    """One resource of a node: its size, what is used and what VMs reserve, in its unit
    (cpus, bytes), and the share of ``limit_pct`` (``[host.limits]``) reserved."""

    total: float
    used: float
    reserved: float
    reserved_pct: float
    limit_pct: float
    available: float | None = None
    used_pct: float | None = None
    usage_pct: float | None = None


class VmCount(Record):
    total: int
    by_state: dict[str, int] = {}


class Fit(Record):
    """Whether one more VM of a template fits on the node, why not, and ``room``: how many
    more of them its ``[host.limits]`` admit now (None when no limit binds)."""

    fits: bool
    reason: str = ""
    room: int | None = None


class NodeInfo(Record):
    """``GET /node/info``: host health, reservations, saturation (a weighted index, 1 is
    full), which templates fit, and the fields plugins add (``virshle_node_info``)."""

    name: str
    cpu: Usage
    ram: Usage
    disk: Usage
    vms: VmCount
    saturation: float
    saturated: bool
    hostname: str | None = None
    hypervisor: str | None = None
    max_count: int | None = None
    saturation_by_resource: dict[str, float] = {}
    templates: dict[str, Fit] = {}
    plugins: dict[str, Any] = {}
    cordon: Cordon | None = None


class TemplateDisk(Record):
    name: str
    path: str
    readonly: bool = False
    sha256: str | None = None


class TemplateNet(Record):
    name: str
    type: str
    options: dict[str, Any] = {}


class Template(Record):
    """A template the node offers (``[[template.vm]]``)."""

    name: str
    vcpu: int
    vram: int
    disks: list[TemplateDisk] = []
    nets: list[TemplateNet] = []
    kernel: str | None = None
    initramfs: str | None = None
    cmdline: str | None = None
    firmware: str | None = None
    user_data: str | None = None
    ssh_authorized_keys: list[str] = []
    ssh_user: str | None = None


class NodeInitRequest(Record):
    """The body of ``POST /node/init``: the parts to prepare (``dir``, ``db``, ``net``)."""

    parts: list[str] = ["dir", "db", "net"]
    force_new: bool = False


class NodeInitResult(Record):
    """What ``node init`` did, per part (an empty list: it was in place already)."""

    root: str
    done: dict[str, list[str]] = {}


class NodeGcRequest(Record):
    """The body of ``POST /node/gc``."""

    dry_run: bool = False


class NodeGcResult(Record):
    """What ``node gc`` removed (or, with ``dry_run``, would remove): a line each."""

    dry_run: bool
    removed: list[str] = []


class ReloadResult(Record):
    """What ``POST /node/reload`` put in force: the file read, its templates, and what it
    warns of (template disks the daemon cannot find)."""

    path: str | None
    templates: list[str] = []
    warnings: list[str] = []


class CordonRequest(Record):
    """The body of ``POST /node/cordon``: why (shown by ``node ls``)."""

    reason: str = ""


class Cordon(Record):
    """A node's cordon: whether the balancer skips it, since when and why."""

    cordoned: bool
    since: str = ""
    reason: str = ""
