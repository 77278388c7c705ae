"""Signals that announce what happened, in blinker's default namespace.

A plugin subscribes by name without importing this module::

    import blinker

    @blinker.signal("vm-created").connect
    def on_created(sender, vm, **data):
        ...

The sender is the node name; ``vm`` is the VM as its JSON dict; other
keyword data depends on the event. A receiver that raises is logged and
skipped: events never make an operation fail.
"""

from __future__ import annotations

from typing import Any

import blinker

VM_CREATED = "vm-created"
VM_STARTED = "vm-started"
VM_STOPPED = "vm-stopped"
VM_DELETED = "vm-deleted"
VM_STATE_CHANGED = "vm-state-changed"
VM_PAUSED = "vm-paused"
VM_RESUMED = "vm-resumed"
VM_REBOOTED = "vm-rebooted"
VM_RESIZED = "vm-resized"
SNAPSHOT_CREATED = "snapshot-created"
SNAPSHOT_RESTORED = "snapshot-restored"
SNAPSHOT_DELETED = "snapshot-deleted"
NET_ATTACHED = "net-attached"
NET_DETACHED = "net-detached"
LEASE_ACQUIRED = "lease-acquired"
NODE_INITIALIZED = "node-initialized"
VM_MIGRATED = "vm-migrated"
NODE_CORDONED = "node-cordoned"

NAMES = (
    VM_CREATED,
    VM_STARTED,
    VM_STOPPED,
    VM_DELETED,
    VM_STATE_CHANGED,
    VM_PAUSED,
    VM_RESUMED,
    VM_REBOOTED,
    VM_RESIZED,
    SNAPSHOT_CREATED,
    SNAPSHOT_RESTORED,
    SNAPSHOT_DELETED,
    NET_ATTACHED,
    NET_DETACHED,
    LEASE_ACQUIRED,
    NODE_INITIALIZED,
    VM_MIGRATED,
    NODE_CORDONED,
)


def declare(name: str) -> None:
    """A plugin verb's event (``Verb.event``): its document is a VM event (``vm`` and no
    more), announced on the event stream like the core's."""
    global NAMES
    if name in NAMES:
        return
    from .wire import api

    api.EVENTS[name] = type("".join(part.capitalize() for part in name.split("-")),
                            (api.VmEvent,), {"__doc__": f"A plugin's event: {name}."})
    NAMES = (*NAMES, name)


def emit(name: str, sender: str, **data: Any) -> int:
    """Send signal ``name``; return how many receivers ran without error.

    ``data`` is the event's document (``api.EVENTS[name]``, less ``event`` and ``node``),
    the same that ``GET /events`` sends: a field it does not declare is logged as a bug.
    """
    if name not in NAMES:
        raise ValueError(f"unknown event {name!r}; known: {', '.join(NAMES)}")
    _check_shape(name, data)
    signal = blinker.signal(name)
    delivered = 0
    for receiver in list(signal.receivers_for(sender)):
        try:
            receiver(sender, **data)
            delivered += 1
        except Exception:
            from .log import logger

            logger.opt(exception=True).error(
                "event {} receiver {} failed (the operation goes on)",
                name, getattr(receiver, "__qualname__", receiver),
            )
    return delivered


def _check_shape(name: str, data: dict[str, Any]) -> None:
    from .wire.api import EVENTS

    declared = {field.name: field for field in EVENTS[name].__fields__}
    unknown = set(data) - set(declared)
    missing = {n for n, f in declared.items() if f.required and n not in ("event", "node")} - set(data)
    if unknown or missing:  # a bug in its sender; logged, as events never fail an operation
        from .log import logger

        logger.error("event {} sent with fields that do not match api.{} (unknown: {}, missing: {})",
                     name, EVENTS[name].__name__, sorted(unknown), sorted(missing))
