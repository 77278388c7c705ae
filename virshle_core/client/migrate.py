"""Moving a VM between two nodes, driven from here (``vm migrate``, ``node drain``): the
source begins, the target accepts, this process carries the files (or a running guest's
disks and memory) from one to the other, the target finishes, the source confirms.

Until the source has done its part, any failure rolls both sides back: the VM stays
where it was. After it, the target's finish decides; a move cut short there is in doubt
on the source, and ``settle`` (run by the next ``vm migrate`` of the VM) ends it,
forward when the target took the VM, back when it had not.
"""

from __future__ import annotations

import time
import uuid
from typing import Callable
from urllib.parse import quote

from ..errors import NotFound, UsageError, VirshleError
from ..wire import api
from .cluster import uuid_ref
from .tunnel import Pipe, open_tunnel

Report = Callable[[str, int, int], None]


def node_id(client) -> str:
    return client.ping().id or ""


def migrate(source, vm: api.Vm, target, live: bool = False,
            report: Report | None = None) -> api.MigrateResult:
    """Move ``vm`` (on ``source``) to ``target``; its result there."""
    report = report or (lambda what, done, total: None)
    target_id = node_id(target)
    if target_id and target_id == node_id(source):
        same = "" if source.name == target.name else f" (node {source.name!r} is the same daemon)"
        raise UsageError(f"VM {vm.name!r} is on node {target.name!r} already{same}",
                         "Choose another node with --to.", code="same_node")
    started = time.monotonic()
    move_id = uuid.uuid4().hex[:12]
    ref = uuid_ref(vm)
    offer = source.migrate(ref, id=move_id, to=target_id, to_name=target.name, live=live)
    at_source = f"/vms/{quote(ref)}/migrate/{move_id}"
    performed = False
    pipes: list[Pipe] = []
    try:
        plan = target.read(api.MovePlan, target.post("/moves", offer.to_json(), timeout=120))
        total = sum(f.size for f in offer.files) + sum(
            b.size for b in offer.bases if b.digest in plan.missing)
        if live:
            carry_files(source, at_source, target, move_id, "static", plan.missing, 0,
                        tally(report, "files", total))
            started_there = target.read(api.MoveStarted, target.post(f"/moves/{move_id}/start",
                                                                     timeout=120))
            pipes = [Pipe(open_tunnel(source, f"{at_source}/stream/{channel}"),
                          open_tunnel(target, f"/moves/{move_id}/stream/{channel}"))
                     for channel in started_there.channels]
            try:
                figures = source._with_progress(f"{at_source}/perform",
                                                {"channels": started_there.channels},
                                                api.PerformLine, api.MoveFigures, report)
            except BaseException:
                for pipe in pipes:  # the source gave up: nothing more will flow
                    pipe.close()
                raise
            carry_files(source, at_source, target, move_id, "console", [],
                        started_there.console_size, lambda n: None)
        else:
            carry_files(source, at_source, target, move_id, "all", plan.missing, 0,
                        tally(report, "files", total))
            figures = source._with_progress(f"{at_source}/perform", {}, api.PerformLine,
                                            api.MoveFigures, report)
        performed = True
        moved = target.read(api.Vm, target.post(f"/moves/{move_id}/finish", timeout=120))
        for pipe in pipes:  # the hypervisors close their ends once the guest runs there
            if not pipe.wait(10):
                pipe.close()
    except BaseException:
        if not performed:
            _quietly(lambda: target.delete(f"/moves/{move_id}"))
            _quietly(lambda: source.post(f"{at_source}/abort"))
            raise
        try:
            how = settle(source, vm, target)
        except VirshleError:
            how = None
        raise VirshleError(
            f"VM {vm.name!r}: its move to node {target.name!r} was cut short after its source "
            "had sent everything" + (f"; it was {how}" if how else ""),
            "" if how else f"Run `virshle vm migrate {vm.name} --to {target.name}` again to "
                           "settle it.", code="migration_failed") from None
    source.post(f"{at_source}/confirm", timeout=120)
    moved.node = target.name
    if not figures.total_ms:
        figures.total_ms = int((time.monotonic() - started) * 1000)
    if figures.bytes == 0:
        figures.bytes = sum(f.size for f in offer.files)
    return api.MigrateResult(vm=moved, source=source.name, target=target.name, live=live,
                             figures=figures)


def tally(report: Report, what: str, total: int) -> Callable[[int], None]:
    """A callback for what a pipe moves a chunk at a time, reporting the running sum."""
    done = 0

    def count(size: int) -> None:
        nonlocal done
        done += size
        report(what, done, total)
    return count


def carry_files(source, at_source: str, target, move_id: str, what: str, bases: list[str],
                since: int, count: Callable[[int], None]) -> None:
    """One files stream, from the source's end to the target's."""
    query = f"?what={what}&bases={','.join(bases)}&since={since}"
    pipe = Pipe(open_tunnel(source, f"{at_source}/stream/files{query}"),
                open_tunnel(target, f"/moves/{move_id}/stream/files"), forward=count)
    pipe.wait()
    pipe.close()
    if pipe.errors:
        raise VirshleError(f"carrying files from node {source.name!r} to node {target.name!r} "
                           f"failed: {pipe.errors[0]}", code="migration_failed")


def settle(source, vm: api.Vm, target) -> str:
    """End a move that was cut short (``vm.moving_to`` says so on ``source``): forward when
    ``target`` holds the VM, back when it does not; what was done, in a word."""
    moves = source.read(api.Move, source.get("/moves"))
    move = next((m for m in moves if m.vm_uuid == vm.uuid and m.side == "source"), None)
    if move is None:
        return "not moving"
    at_source = f"/vms/{quote(uuid_ref(vm))}/migrate/{move.id}"
    incoming = next((m for m in target.read(api.Move, target.get("/moves"))
                     if m.id == move.id and m.side == "target"), None)
    try:
        owned = target.vm(uuid_ref(vm), leases=False)
    except NotFound:
        owned = None
    if owned is not None:  # the target finished: it owns the VM
        source.post(f"{at_source}/confirm", timeout=120)
        return "finished"
    if incoming is not None and move.phase == "performed":
        try:
            target.post(f"/moves/{move.id}/finish", timeout=120)
        except NotFound:
            pass  # it was rolled back meanwhile: back it goes here too
        else:
            source.post(f"{at_source}/confirm", timeout=120)
            return "finished"
    if incoming is not None:
        _quietly(lambda: target.delete(f"/moves/{move.id}"))
    source.post(f"{at_source}/abort", timeout=120)
    return "rolled back"


def _quietly(call: Callable) -> None:
    try:
        call()
    except (VirshleError, OSError):
        pass


def describe(result: api.MigrateResult) -> str:
    """``live, downtime 12 ms, 1.4 s in all, 96 MiB``: how a move went, in a few words."""
    from ..units import human_size

    figures = result.figures
    parts = ["live" if result.live else "stopped"]
    if result.live and figures.downtime_ms is not None:
        parts.append(f"downtime {figures.downtime_ms} ms")
    if figures.total_ms:
        parts.append(f"{figures.total_ms / 1000:.1f} s in all")
    if figures.bytes:
        parts.append(human_size(figures.bytes))
    return ", ".join(parts)
