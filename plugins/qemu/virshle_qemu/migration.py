"""Live migration with QEMU's own machinery, as libvirt does it for ``--copy-storage-all``.

The target QEMU starts with ``-incoming defer -S`` (it waits, paused) and exports each
writable disk over NBD (``nbd-server-start``, ``block-export-add``) on ``nbd.sock``,
then listens for the memory on ``incoming.sock`` (``migrate-incoming``). The source
mirrors each writable disk into an ``nbd`` node on its end of the disk's stream
(``blockdev-mirror``: ``top`` for an overlay, whose base the target has, ``full``
otherwise), and once every mirror is ready migrates the memory with
``pause-before-switchover``: paused there, the mirrors are cancelled (they are in sync,
and the guest no longer writes), then the switch-over completes. The target resumes
after its NBD server stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

from virshle_core import VirshleError
from virshle_core.progress import report

from .vmm import qmp, session, start, stop

POLL = 0.05
SWITCH_POLL = 0.005
"""Seconds between looks while the guest is paused for the switch-over: each look is part
of the downtime."""
ACTIVE = ("setup", "active", "device", "pre-switchover", "postcopy-active")
CONVERGE_TIMEOUT = 600.0
"""Seconds a copy may take before it is given up (a guest that dirties memory faster
than it moves never converges)."""


def receive(vm, attachments: list, config) -> dict[str, str]:
    """Start the target QEMU waiting for the guest; its sockets by channel."""
    directory = Path(vm.dir)
    nbd, incoming = directory / "nbd.sock", directory / "incoming.sock"
    for path in (nbd, incoming):
        path.unlink(missing_ok=True)
    start(vm, attachments, config, extra=("-incoming", "defer", "-S"))
    try:
        sockets = {"memory": str(incoming)}
        writable = [disk for disk in vm.disks if not disk.readonly]
        if writable:
            qmp(vm, "nbd-server-start", {"addr": {"type": "unix", "data": {"path": str(nbd)}}})
            nodes = _nodes(vm)
            for disk in writable:
                qmp(vm, "block-export-add", {"type": "nbd", "id": f"export-{disk.name}",
                                              "node-name": nodes[disk.path], "name": disk.name,
                                              "writable": True})
                sockets[f"disk:{disk.name}"] = str(nbd)
        qmp(vm, "migrate-incoming", {"uri": f"unix:{incoming}"})
    except BaseException:
        stop(vm, force=True, timeout=5)
        raise
    return sockets


def send(vm, sockets: dict[str, str]) -> dict:
    """Mirror the writable disks, then move the memory; the guest ends paused here."""
    started = time.monotonic()
    devices = _devices(vm)
    mirrors = []
    try:
        for disk in (d for d in vm.disks if not d.readonly):
            device, has_base = devices[disk.path]
            node = f"migrate-{disk.name}"
            qmp(vm, "blockdev-add", {"driver": "nbd", "node-name": node, "export": disk.name,
                                     "server": {"type": "unix", "path": sockets[f"disk:{disk.name}"]}})
            mirrors.append((f"mirror-{disk.name}", node))
            qmp(vm, "blockdev-mirror", {"job-id": f"mirror-{disk.name}", "device": device,
                                        "target": node, "sync": "top" if has_base else "full"})
        _wait_mirrors_ready(vm, started)
        qmp(vm, "migrate-set-capabilities", {"capabilities": [
            {"capability": "pause-before-switchover", "state": True},
            {"capability": "auto-converge", "state": True}]})
        with session(vm) as call:  # from here on, each look is quick
            call("migrate", {"uri": f"unix:{sockets['memory']}"})
            status = _wait_migration(call, vm, ("pre-switchover",), started, SWITCH_POLL)
            report("switch-over", 0, 1)
            for job, _ in mirrors:  # in sync, and the guest is paused: the target's disks are whole
                call("block-job-cancel", {"device": job})
            _wait(lambda: not call("query-block-jobs"), started, "the disk copies to end",
                  every=SWITCH_POLL)
            call("migrate-continue", {"state": "pre-switchover"})
            status = _wait_migration(call, vm, ("completed",), started, SWITCH_POLL)
        for _, node in mirrors:  # its NBD connection closes: the disk's stream ends
            _quietly(vm, "blockdev-del", {"node-name": node})
        report("switch-over", 1, 1)
    except BaseException:
        cancel(vm)
        raise
    return {"downtime_ms": status.get("downtime"), "total_ms": status.get("total-time"),
            "bytes": (status.get("ram") or {}).get("transferred", 0)}


def cancel(vm) -> None:
    """Stop whatever copy is under way; a guest that ran before (``vm.state``, as recorded
    when the migration began) runs on here, even when paused at the switch-over."""
    status = _quietly(vm, "query-migrate") or {}
    if status.get("status") in ACTIVE:
        _quietly(vm, "migrate_cancel")
        _wait(lambda: (_quietly(vm, "query-migrate") or {}).get("status") not in (*ACTIVE, "cancelling"),
              time.monotonic(), "the migration to be cancelled", timeout=30, fail=False)
    for job in _quietly(vm, "query-block-jobs") or []:
        _quietly(vm, "block-job-cancel", {"device": job["device"], "force": True})
    _wait(lambda: not (_quietly(vm, "query-block-jobs") or []), time.monotonic(),
          "the disk copies to end", timeout=30, fail=False)
    for disk in vm.disks:
        _quietly(vm, "blockdev-del", {"node-name": f"migrate-{disk.name}"})
    run = (_quietly(vm, "query-status") or {}).get("status")
    if vm.state == "running" and run in ("postmigrate", "paused", "finish-migrate"):
        _quietly(vm, "cont")  # its disks come back to it (QEMU re-activates them)


def finish_target(vm) -> None:
    """The guest is all here: the NBD server goes, then it runs."""
    deadline = time.monotonic() + 60
    while (qmp(vm, "query-migrate") or {}).get("status") not in ("completed", None):
        if time.monotonic() > deadline:
            raise VirshleError(f"VM {vm.name!r}: the incoming migration did not complete",
                               code="migration_failed")
        time.sleep(POLL)
    _quietly(vm, "nbd-server-stop")
    qmp(vm, "cont")


def _nodes(vm) -> dict[str, str]:
    """The block node of each disk, by file."""
    return {block["inserted"]["file"]: block["inserted"]["node-name"]
            for block in qmp(vm, "query-block") if block.get("inserted")}


def _devices(vm) -> dict[str, tuple[str, bool]]:
    """The block device of each disk, by file, and whether it has a backing image."""
    return {block["inserted"]["file"]: (block["device"], bool(block["inserted"].get("backing_file")))
            for block in qmp(vm, "query-block") if block.get("inserted")}


def _wait_mirrors_ready(vm, started: float) -> None:
    def ready() -> bool:
        jobs = qmp(vm, "query-block-jobs")
        done, total = sum(j.get("offset", 0) for j in jobs), sum(j.get("len", 0) for j in jobs)
        report("disks", done, total)
        for job in jobs:
            if job.get("status") == "concluded" or job.get("error"):
                raise VirshleError(f"VM {vm.name!r}: copying a disk failed: "
                                   f"{job.get('error') or 'the copy stopped'}", code="migration_failed")
        return all(job.get("ready") for job in jobs)
    _wait(ready, started, "the disk copies")


def _wait_migration(call, vm, wanted: tuple[str, ...], started: float, every: float) -> dict:
    found: dict = {}

    def reached() -> bool:
        nonlocal found
        found = call("query-migrate")
        status = found.get("status")
        ram = found.get("ram") or {}
        if status in ("failed", "cancelled"):
            raise VirshleError(f"VM {vm.name!r}: the memory copy {status}: "
                               f"{found.get('error-desc', 'no reason given')}", code="migration_failed")
        if status == "active":
            report("memory", ram.get("transferred", 0), ram.get("total", 0))
        return status in wanted
    _wait(reached, started, "the memory copy", every=every)
    return found


def _wait(predicate, started: float, what: str, timeout: float = CONVERGE_TIMEOUT,
          fail: bool = True, every: float = POLL) -> None:
    while not predicate():
        if time.monotonic() - started > timeout:
            if not fail:
                return
            raise VirshleError(f"{what} took more than {timeout:.0f} s", code="migration_failed")
        time.sleep(every)


def _quietly(vm, command: str, arguments: dict | None = None):
    """A QMP command whose failure only means there was nothing to do."""
    try:
        return qmp(vm, command, arguments)
    except Exception:
        return None
