"""One verb on many VMs: ``vm start|stop|rm|pause|resume|reboot`` with several
``--name``/``--id``/``--uuid``, ``--state STATE`` or ``--all``, on every node or one.

The VMs are acted on concurrently, at most ``FAN_OUT`` at a time (each is one request
to its node, whose daemon serialises work on one VM only); a line on stderr counts them
as they finish, on a terminal. Each VM's result is printed (or, with ``--json``, a list
of ``{vm, node, ok, result, error}``), and the exit status is 1 when any failed.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from .. import api
from ..errors import UsageError, VirshleError
from .render import echo, emit_json

FAN_OUT = 8

# the states a verb acts on under --all: the others are skipped, not failed
READY = {
    "start": ("created", "shutdown", "crashed"),
    "stop": ("running", "paused"),
    "pause": ("running",),
    "resume": ("paused",),
    "reboot": ("running",),
    "rm": None,
}


def select(settings, refs: list, node_name: str | None, state: str | None, every: bool,
           verb: str) -> list[tuple[Any, api.Vm]]:
    """The (client, VM) pairs the selection names: VMs by reference (each must exist), or
    every VM in ``state``, or with ``every`` all those ``verb`` acts on."""
    from ..client import fan_out, one_per_daemon
    from ..client.cluster import find_vm

    if refs and (state or every):
        raise UsageError("name VMs, or select them with --state or --all; not both")
    if refs:
        return [find_vm(settings.clients(node_name), ref) for ref in refs]
    results, _ = one_per_daemon(fan_out(settings.clients(node_name), lambda c: c.vms(state)))
    chosen = []
    for client, vms, error in results:
        if error is not None:
            raise error
        for vm in vms:
            vm.node = client.name
            if state or READY[verb] is None or vm.state in READY[verb]:
                chosen.append((client, vm))
    return chosen


class Counter:
    """``stopping: 3 of 8 done`` on stderr, on a terminal only."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done = what, total, 0
        self.enabled = sys.stderr.isatty()

    def tick(self) -> None:
        self.done += 1
        if self.enabled:
            sys.stderr.write(f"\r{self.what}: {self.done} of {self.total} done   ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")


def run(settings, targets: list[tuple[Any, api.Vm]], doing: str,
        work: Callable[[Any, api.Vm], Any], said: Callable[[Any, api.Vm, Any], str],
        as_json: bool) -> int:
    """Run ``work(client, vm)`` on every target, ``FAN_OUT`` at a time; print what
    ``said(client, vm, result)`` says of each, or its error; 1 when any failed."""
    from concurrent.futures import ThreadPoolExecutor

    if not targets:
        if as_json:
            emit_json([])
        else:
            settings.say("No VM matches; nothing to do.")
        return 0
    counter = Counter(doing, len(targets))

    def one(target: tuple[Any, api.Vm]) -> tuple[Any, VirshleError | None]:
        client, vm = target
        try:
            return work(client, vm), None
        except VirshleError as exc:
            return None, exc
        finally:
            counter.tick()

    with ThreadPoolExecutor(max_workers=min(FAN_OUT, len(targets))) as pool:
        try:
            outcomes = list(pool.map(one, targets))
        finally:
            counter.close()
    failed = 0
    report = []
    for (client, vm), (result, error) in zip(targets, outcomes):
        failed += error is not None
        if as_json:
            report.append({"vm": vm.name, "node": client.name, "ok": error is None,
                           "result": _json(result),
                           "error": error.to_json() if error is not None else None})
        elif error is None:
            settings.say(said(client, vm, result))
        else:
            echo(f"Error: VM {vm.name} on node {client.name}: {error.message}", err=True)
    if as_json:
        emit_json(report)
    elif failed:
        echo(f"{failed} of {len(targets)} failed.", err=True)
    return 1 if failed else 0


def _json(result: Any) -> Any:
    if result is None:
        return None
    return result.to_json() if hasattr(result, "to_json") else result
