"""One verb on many VMs: any verb declared ``bulk`` (``vm start|stop|rm|pause|resume|
reboot``, a plugin's) with several names, ``--state STATE`` or ``--all``, on every node or
one; ``--all`` takes the VMs in the states the verb acts on.

The VMs are acted on concurrently, at most ``FAN_OUT`` at a time (each is one request
to its node, whose daemon serialises work on one VM only); a line on stderr counts them
as they finish, on a terminal. Each VM's result is printed (or, with ``--json``, a list
of ``{vm, node, ok, result, error}``), and the exit status is 1 when any failed.
"""

from __future__ import annotations

import sys
from typing import Any

from ..wire import api
from ..errors import UsageError, VirshleError
from .render import echo, emit_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..verbs import Verb

FAN_OUT = 8


def request(client, verb: "Verb", vm: api.Vm, values: dict) -> Any:
    """The verb's request for one VM, by its uuid (its name may be another VM's elsewhere)."""
    return client.perform(verb, f"uuid:{vm.uuid}", **values)


def select(settings, refs: list, node_name: str | None, state: str | None, every: bool,
           verb: "Verb") -> list[tuple[Any, api.Vm]]:
    """The (client, VM) pairs the selection names: VMs by reference (each must exist), or
    every VM in ``state``, or with ``every`` all those ``verb`` acts on (its ``states``)."""
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
            if state or verb.states is None or vm.state in verb.states:
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


def run(settings, targets: list[tuple[Any, api.Vm]], verb: "Verb", values: dict,
        as_json: bool) -> int:
    """Run ``verb`` on every target, ``FAN_OUT`` at a time; print what is said of each, or
    its error; 1 when any failed."""
    from concurrent.futures import ThreadPoolExecutor

    def work(client, vm) -> Any:
        return request(client, verb, vm, dict(values))

    if not targets:
        if as_json:
            emit_json([])
        else:
            settings.say("No VM matches; nothing to do.")
        return 0
    counter = Counter(verb.doing, len(targets))

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
            settings.say(verb.say(vm, client.name, result, values))
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
