"""The records of a VM moving between nodes (``vm migrate``, ``node drain``); named in
``wire/api.py`` as the API's."""

from __future__ import annotations

from .record import Record

TYPE_CHECKING = False  # typing itself is an import the CLI's start-up avoids
if TYPE_CHECKING:
    from typing import Any

# Error, Progress and Vm are api's records, found by name (record.TYPES): importing
# api here would make a cycle, as api names these records as its own.


class Move(Record):
    """One VM moving, as one side journals it: ``side`` is ``source`` or ``target``,
    ``peer`` the other node's id and ``peer_name`` what the command line called it;
    ``phase`` is the source's ``begun`` (it owns the VM) or ``performed`` (the target
    holds everything: the next command line settles it), or the target's ``accepted``."""

    id: str
    vm_uuid: str
    side: str
    peer: str
    peer_name: str
    live: bool = False
    phase: str = "begun"
    started_at: str = ""


class MigrateRequest(Record):
    """The body of ``POST /vms/{ref}/migrate`` (the source begins): the move's ``id`` (the
    command line's), the target node's id (``to``) and name (``to_name``), and ``live``."""

    id: str
    to: str
    to_name: str = ""
    live: bool = False


class MoveFile(Record):
    """A file of the VM's directory, by its path there, and its size; an overlay names
    the ``base`` image (its sha256) the target must hold."""

    path: str
    size: int
    base: str | None = None


class MoveBase(Record):
    """An image a VM's overlay stands on: its sha256, size, format and cache name."""

    digest: str
    size: int
    format: str
    name: str


class MoveOffer(Record):
    """What the source says of the VM it gives (the reply of ``POST /vms/{ref}/migrate``,
    the body of ``POST /moves``): its row as the store keeps it, its snapshots, files and
    base images."""

    id: str
    source: str
    source_name: str
    target_name: str
    live: bool
    vm: dict[str, Any]
    source_dir: str = ""
    snapshots: list[dict[str, Any]] = []
    files: list[MoveFile] = []
    bases: list[MoveBase] = []


class MovePlan(Record):
    """The target's answer to an offer: it took the VM (journaled, not listed yet) and
    lacks these base images (their sha256)."""

    id: str
    missing: list[str] = []


class MoveStarted(Record):
    """The target waits for a running guest on these streams (``memory``, ``disk:<name>``);
    it holds ``console_size`` bytes of the console log (the rest comes once it is paused)."""

    channels: list[str]
    console_size: int = 0


class MoveFigures(Record):
    """How a move went: bytes sent, the time it took and, live, the guest's downtime as the
    hypervisor measured it."""

    bytes: int = 0
    total_ms: int | None = None
    downtime_ms: int | None = None


class PerformRequest(Record):
    """The body of ``POST /vms/{ref}/migrate/{id}/perform``: the streams the target waits
    on (a running VM's), each already carried to this node."""

    channels: list[str] = []


class PerformLine(Record):
    """One line of ``POST /vms/{ref}/migrate/{id}/perform`` streamed as NDJSON: progress
    (``what`` is the phase: disks, memory, switch-over), then the ``result`` or ``error``."""

    progress: Progress | None = None  # noqa: F821
    result: MoveFigures | None = None
    error: Error | None = None  # noqa: F821
    status: int | None = None


class MigrateResult(Record):
    """``vm migrate``'s result: the VM on its new node, where it came from, and how it went."""

    vm: Vm  # noqa: F821
    source: str
    target: str
    live: bool
    figures: MoveFigures
    settled: str = ""
