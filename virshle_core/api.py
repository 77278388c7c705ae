"""What crosses a node's socket, declared once: requests, replies, errors and events.

Every document the daemon sends or takes is one of the classes below. The
daemon writes its replies with them, the client reads them back into them (so
the CLI and Python callers get typed objects, not dicts), and the OpenAPI
document's schemas are generated from them (``daemon/openapi.py``).

They are plain classes on a small base, :class:`Record`, rather than attrs
classes read through cattrs: the CLI reads them on every listing, and attrs
and cattrs together cost more to import than the whole listing takes
(docs/architecture.md, "Start-up"). ``Record`` knows just the types used
here: ``str``, ``int``, ``float``, ``bool``, ``X | None``, ``list[X]``,
``dict[str, X]``, the enums below and other records.

A reply may carry fields a client does not know (a newer daemon): they are
ignored. A request may not: an unknown field is refused with the list of the
known ones.
"""

from __future__ import annotations

import sys
from enum import Enum, StrEnum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .errorcodes import ErrorCode


class VmState(StrEnum):
    """The states a VM is in, as the node records them."""

    CREATED = "created"    # defined, never booted or booted and stopped by the node
    RUNNING = "running"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"  # powered off from inside, or stopped
    CRASHED = "crashed"    # its VMM died on its own, or the guest panicked


STATES = tuple(state.value for state in VmState)


def __getattr__(name: str) -> Any:
    if name == "ErrorCode":  # 65 members: 1.6 ms to build, read only when an error is
        from .errorcodes import ErrorCode

        return ErrorCode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class WireError(ValueError):
    """A document does not have the shape its class declares; ``problems`` says where."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class Field:
    """One field of a record: its name, its type as written, and its default."""

    __slots__ = ("name", "type", "default", "required")

    def __init__(self, name: str, type: str, default: Any):
        self.name, self.type, self.default = name, type, default
        self.required = default is _REQUIRED


_REQUIRED = object()


class Record:
    """The base of every wire document: its fields are its annotations, in order.

    A field's default is the class attribute of the same name; a list or dict default
    is copied for each instance. ``to_json()`` gives the document, ``from_json()``
    reads one (``strict`` for requests: unknown fields and wrong types are refused).
    """

    __fields__: tuple[Field, ...] = ()

    def __init_subclass__(cls) -> None:
        fields = {f.name: f for f in cls.__fields__}
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if name.startswith("_"):
                continue
            fields[name] = Field(name, annotation, cls.__dict__.get(name, _REQUIRED))
        cls.__fields__ = tuple(fields.values())

    def __init__(self, **values: Any):
        for field in self.__fields__:
            if field.name in values:
                value = values.pop(field.name)
            elif field.required:
                raise TypeError(f"{type(self).__name__}: missing field {field.name!r}")
            else:
                value = field.default
                if isinstance(value, (list, dict)):
                    value = value.copy()
            setattr(self, field.name, value)
        if values:
            raise TypeError(f"{type(self).__name__}: unknown field(s) {', '.join(values)}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__fields__)
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, f.name) == getattr(other, f.name) for f in self.__fields__)

    def to_json(self) -> dict:
        return dump(type(self), self)

    @classmethod
    def from_json(cls, data: Any, strict: bool = False):
        problems: list[str] = []
        value = _read(cls.__name__, data, "", strict, problems)
        if problems:
            raise WireError(problems)
        return value

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in cls.__fields__]


def dump(cls: type[Record], source: Any) -> dict:
    """The document of ``cls`` read off ``source``: a record, or any object with the same
    attribute names (the node's own ``models.Vm``), so no copy is made in between."""
    document = {}
    for field in cls.__fields__:
        document[field.name] = _write(field.type, getattr(source, field.name))
    return document


def dump_list(cls: type[Record], sources: Any) -> list[dict]:
    return [dump(cls, source) for source in sources]


def _write(kind: str, value: Any) -> Any:
    if value is None or kind in _SCALARS:
        return value.value if isinstance(value, Enum) else value
    if kind.endswith(" | None"):
        return _write(kind[:-7], value)
    if kind.startswith("list["):
        return [_write(kind[5:-1], item) for item in value]
    if kind.startswith("dict[str, "):
        return {key: _write(kind[10:-1], item) for key, item in value.items()}
    target = _named(kind)
    if isinstance(target, type) and issubclass(target, Record):
        return dump(target, value)
    return value.value if isinstance(value, Enum) else value


_SCALARS = {"str": str, "int": int, "float": float, "bool": bool, "Any": object}


def _named(kind: str) -> Any:
    return getattr(sys.modules[__name__], kind, None)


def _read(kind: str, value: Any, where: str, strict: bool, problems: list[str]) -> Any:
    """``value`` as ``kind``; what does not fit is added to ``problems`` (as ``where: ...``)."""
    if kind.endswith(" | None"):
        return None if value is None else _read(kind[:-7], value, where, strict, problems)
    if kind == "Any":
        return value
    expected = _SCALARS.get(kind)
    if expected is not None:
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return value  # a JSON number, kept as written
        if not ok:
            problems.append(f"{where or 'the document'}: must be {_NAMES[kind]}, not {_shown(value)}")
        elif strict and expected is str and "\x00" in value:
            problems.append(f"{where}: must not contain a NUL character")
        return value
    if kind.startswith("list["):
        if not isinstance(value, list):
            problems.append(f"{where or 'the document'}: must be a list, not {_shown(value)}")
            return []
        return [_read(kind[5:-1], item, f"{where}[{i}]", strict, problems)
                for i, item in enumerate(value)]
    if kind.startswith("dict[str, "):
        if not isinstance(value, dict):
            problems.append(f"{where or 'the document'}: must be an object, not {_shown(value)}")
            return {}
        return {key: _read(kind[10:-1], item, f"{where}.{key}", strict, problems)
                for key, item in value.items()}
    target = _named(kind)
    if isinstance(target, type) and issubclass(target, Enum):
        try:
            return target(value)
        except ValueError:
            if strict:
                problems.append(f"{where}: must be one of "
                                + ", ".join(item.value for item in target))
            return value  # a newer daemon's value: kept as the string it is
    if not (isinstance(target, type) and issubclass(target, Record)):
        raise TypeError(f"api: unknown field type {kind!r}")
    if not isinstance(value, dict):
        problems.append(f"{where or 'the document'}: must be an object, not {_shown(value)}")
        return None
    known = {f.name for f in target.__fields__}
    unknown = [key for key in value if key not in known]
    if strict:
        problems.extend(f"{where + '.' if where else ''}{key}: unknown key" for key in unknown)
    values = {}
    for field in target.__fields__:
        here = f"{where}.{field.name}" if where else field.name
        if field.name in value:
            values[field.name] = _read(field.type, value[field.name], here, strict, problems)
        elif field.required:
            problems.append(f"{here}: is required")
    if problems:
        return None
    return target(**values)


_NAMES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
    """A VM as its node knows it; ``ips`` are its DHCP leases (empty when not asked)."""

    id: int | None
    uuid: str
    name: str
    node: str
    template: str
    state: VmState
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


class CreateRequest(Record):
    """The body of ``POST /vms``: ``count`` VMs of ``template``; with a ``name`` and a
    count above one, they are named ``NAME-1``, ``NAME-2``..."""

    template: str
    name: str | None = None
    count: int = 1
    user_data: str | None = None


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


# --- the node ------------------------------------------------------------------------


class Pong(Record):
    pong: bool
    node: str
    version: str


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
    """Whether one more VM of a template fits on the node, and why not."""

    fits: bool
    reason: str = ""


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


class NodeInitialized(Event):
    parts: list[str]
    root: str


EVENTS: dict[str, type[Event]] = {
    "hello": Hello,
    "vm-created": VmCreated,
    "vm-started": VmStarted,
    "vm-stopped": VmStopped,
    "vm-deleted": VmDeleted,
    "vm-state-changed": VmStateChanged,
    "net-attached": NetAttached,
    "net-detached": NetDetached,
    "lease-acquired": LeaseAcquired,
    "node-initialized": NodeInitialized,
}


def read_event(data: dict) -> Event:
    """An event line as its class (a plain ``Event`` for a name this client does not know)."""
    return EVENTS.get(data.get("event"), Event).from_json(data)
