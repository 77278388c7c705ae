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
NET_ATTACHED = "net-attached"
NET_DETACHED = "net-detached"
LEASE_ACQUIRED = "lease-acquired"
NODE_INITIALIZED = "node-initialized"

NAMES = (
    VM_CREATED,
    VM_STARTED,
    VM_STOPPED,
    VM_DELETED,
    VM_STATE_CHANGED,
    NET_ATTACHED,
    NET_DETACHED,
    LEASE_ACQUIRED,
    NODE_INITIALIZED,
)


def emit(name: str, sender: str, **data: Any) -> int:
    """Send signal ``name``; return how many receivers ran without error."""
    if name not in NAMES:
        raise ValueError(f"unknown event {name!r}; known: {', '.join(NAMES)}")
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
