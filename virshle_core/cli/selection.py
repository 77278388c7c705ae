"""Which VMs a ``vm`` command acts on: ``--id``, ``--name``, ``--uuid`` (each as often as
wanted), a positional ``NAME...``, ``--state`` or ``--all``, on every node or ``--node``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import click

from ..wire.api import STATES
from .app import Settings
from .completion import node_names, vm_names

if TYPE_CHECKING:
    from ..verbs import Verb


class VmIdType(click.ParamType):
    """A VM id: ASCII digits only (``int()`` would also take ``٣`` or ``+3``)."""

    name = "ID"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        from ..wire.refs import ID_PATTERN

        text = str(value)
        if not ID_PATTERN.fullmatch(text):
            self.fail(f"{text!r} is not a VM id (ids are ASCII digits, as `vm ls` shows them)",
                      param, ctx)
        return text


def vm_ref_options(func: Callable) -> Callable:
    """``--id | --name | --uuid`` and ``--node``: which VM, where. Each may be given several
    times, for the verbs that act on several VMs."""
    func = click.option("--node", "node_name", metavar="NAME", shell_complete=node_names,
                        help="The node that has the VM (default: search every node).")(func)
    func = click.option("--uuid", "vm_uuid", metavar="UUID", multiple=True,
                        help="The VM's uuid.")(func)
    func = click.option("--name", "vm_name", metavar="NAME", multiple=True, shell_complete=vm_names,
                        help="The VM's name.")(func)
    func = click.option("--id", "vm_id", metavar="ID", type=VmIdType(), multiple=True,
                        help="The VM's id.")(func)
    return func


def one_vm(func: Callable) -> Callable:
    """One VM: ``NAME``, or one of ``--id | --name | --uuid``; and ``--node``."""
    func = vm_ref_options(func)
    return click.argument("name", required=False, metavar="[NAME]", shell_complete=vm_names)(func)


def vm_selection(func: Callable) -> Callable:
    """The VMs a verb acts on: names (``NAME...``, ``--name``, ``--id``, ``--uuid``, each as
    often as wanted), or ``--state STATE``, or ``--all``; on every node or ``--node``."""
    func = click.option("--all", "every", is_flag=True,
                        help="Every VM this verb applies to (e.g. every running VM for stop).")(func)
    func = click.option("--state", "state", type=click.Choice(STATES),
                        help="Every VM in this state.")(func)
    func = vm_ref_options(func)
    return click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=vm_names)(func)


def refs_of(names=(), vm_id=(), vm_name=(), vm_uuid=()) -> list:
    """Every reference given, in its own namespace (``id:7``, ``name:web``, ``uuid:…``)."""
    from ..wire.refs import VmRef

    names = [("name", n) for n in (*names, *_many(vm_name))]
    return [VmRef.of(kind, value) for kind, value in
            (*names, *(("id", v) for v in _many(vm_id)), *(("uuid", v) for v in _many(vm_uuid)))]


def _many(value) -> tuple:
    return () if value is None else (value,) if isinstance(value, str) else tuple(value)


def one_ref(vm_id=(), vm_name=(), vm_uuid=(), names=()):
    """The one reference given (a positional NAME counts), or a usage error."""
    refs = refs_of(names, vm_id, vm_name, vm_uuid)
    if len(refs) != 1:
        raise click.UsageError("name the VM with exactly one of --id, --name or --uuid"
                               + (" (or NAME)" if names else ""))
    return refs[0]


def act(settings: Settings, verb: "Verb", names, vm_id, vm_name, vm_uuid, node_name, state,
        every: bool, as_json: bool, values: dict | None = None, yes: bool = False,
        attach: bool = False) -> None:
    """One VM named once: ``actions.one``. Several, ``--state`` or ``--all``: the bulk run
    (``cli/bulk.py``), exit 1 when any failed."""
    from . import actions, bulk

    values = values or {}
    refs = refs_of(names, vm_id, vm_name, vm_uuid)
    if len(refs) == 1 and not state and not every:
        actions.one(settings, verb, refs[0], node_name, values, as_json, attach=attach)
        return
    if not refs and not state and not every:
        raise click.UsageError(f"say which VMs to {verb.name}: NAME..., --id, --name or --uuid "
                               "(each as often as you like), --state STATE or --all")
    targets = bulk.select(settings, refs, node_name, state, every, verb)
    if verb.method == "DELETE":
        _confirm_removal(targets, state, every, yes)
    code = bulk.run(settings, targets, verb, values, as_json)
    if code:
        raise click.exceptions.Exit(code)


def _confirm_removal(targets: list, state, every: bool, yes: bool) -> None:
    if yes or not (state or every) or not targets:
        return
    import sys

    names = ", ".join(vm.name for _, vm in targets[:10]) + (", ..." if len(targets) > 10 else "")
    if not sys.stdin.isatty():
        raise click.UsageError(f"this removes {len(targets)} VMs ({names}) and their disks: "
                               "add --yes to confirm (there is no terminal to ask)")
    if not click.confirm(f"Remove {len(targets)} VMs ({names}) and their disks?", err=True):
        raise click.exceptions.Exit(1)


