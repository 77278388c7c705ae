"""Signals: blinker's default namespace, receivers never fail an operation."""

from __future__ import annotations

import blinker
import pytest

from virshle_core import events


def test_signals_live_in_blinkers_default_namespace():
    got = []

    def receiver(sender, **data):
        got.append((sender, data))

    blinker.signal("vm-created").connect(receiver)
    try:
        assert events.emit(events.VM_CREATED, "node-a", vm={"name": "x"}) == 1
    finally:
        blinker.signal("vm-created").disconnect(receiver)
    assert got == [("node-a", {"vm": {"name": "x"}})]


def test_every_design_event_exists():
    assert set(events.NAMES) == {
        "vm-created", "vm-started", "vm-stopped", "vm-deleted", "vm-state-changed",
        "net-attached", "net-detached", "lease-acquired", "node-initialized",
        "vm-paused", "vm-resumed", "vm-rebooted", "vm-resized", "snapshot-created",
        "snapshot-restored", "snapshot-deleted", "vm-migrated", "node-cordoned"}


def test_a_raising_receiver_is_logged_and_the_others_still_run(capfd):
    from virshle_core import log

    log._install()  # the sink holds the stderr of whichever test logged first
    got = []

    def bad(sender, **data):
        raise RuntimeError("receiver bug")

    def good(sender, **data):
        got.append(sender)

    signal = blinker.signal("vm-stopped")
    signal.connect(bad)
    signal.connect(good)
    try:
        delivered = events.emit(events.VM_STOPPED, "n", vm={})
    finally:
        signal.disconnect(bad)
        signal.disconnect(good)
    assert got == ["n"] and delivered == 1
    err = capfd.readouterr().err
    assert "event vm-stopped receiver" in err and "receiver bug" in err


def test_unknown_event_names_are_a_bug():
    with pytest.raises(ValueError, match="unknown event"):
        events.emit("vm-exploded", "n")
