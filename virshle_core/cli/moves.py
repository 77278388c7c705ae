"""Moving VMs between nodes: ``vm migrate``, and a node's ``cordon``, ``uncordon`` and
``drain`` (client/migrate.py does the moving)."""

from __future__ import annotations

import click

from . import actions
from .app import Settings, verbosity_options
from .completion import node_names
from .selection import one_ref
from .verbs_cmd import JSON, declared


@declared("vm", "migrate", words="[VM]")
@click.option("--to", "to", required=True, metavar="NODE", shell_complete=node_names,
              help="The node to move it to.")
@click.option("--live", is_flag=True,
              help="Move it while it runs: its disks, then its memory, are copied and the "
                   "guest pauses only for the switch-over.")
def migrate_command(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name,
                    as_json: bool, to: str, live: bool) -> None:
    from ..client.migrate import describe, migrate, settle
    from .render import emit_json

    words = list(words)
    if len(words) == 1 and not (vm_id or vm_name or vm_uuid):
        vm_name = (words.pop(0),)
    if words:
        raise click.UsageError("say the VM: vm migrate VM --to NODE")
    target = settings.clients(to, "--to")[0]
    source, vm = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid), node_name)
    if vm.moving_to:  # a move cut short: settle it first
        how = settle(source, vm, _by_id(settings, source, vm) or target)
        settings.say(f"VM {vm.name}: its unfinished move to {vm.moving_to} was {how}.")
        if how == "finished":
            return
        source, vm = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid), node_name)
    bar = actions.ProgressLine()
    try:
        result = migrate(source, vm, target, live=live, report=bar.update)
    finally:
        bar.close()
    if as_json:
        emit_json(result)
        return
    settings.say(f"Moved VM {vm.name} from node {result.source} to node {result.target} "
                 f"({describe(result)}).")


def _by_id(settings: Settings, source, vm):
    """The node a cut-short move went to, found by its id among this command line's nodes
    (another command line may call it by another name)."""
    from ..client import fan_out
    from ..wire import api

    move = next((m for m in source.read(api.Move, source.get("/moves"))
                 if m.vm_uuid == vm.uuid and m.side == "source"), None)
    if move is None:
        return None
    for client, pong, error in fan_out(settings.clients(None), lambda c: c.ping()):
        if error is None and pong.id == move.peer:
            return client
    return None


@declared("node", "cordon")
@click.argument("name", metavar="NAME", shell_complete=node_names)
@click.option("--reason", metavar="TEXT", default="", help="Why, shown by node ls -v.")
@JSON
@verbosity_options
@click.pass_obj
def node_cordon(settings: Settings, name: str, reason: str, as_json: bool) -> None:
    _cordon(settings, name, as_json, reason)


@declared("node", "uncordon")
@click.argument("name", metavar="NAME", shell_complete=node_names)
@JSON
@verbosity_options
@click.pass_obj
def node_uncordon(settings: Settings, name: str, as_json: bool) -> None:
    _cordon(settings, name, as_json, None)


def _cordon(settings: Settings, name: str, as_json: bool, reason: str | None) -> None:
    from .render import emit_json

    client = settings.clients(name, "NAME")[0]
    held = client.cordon(reason=reason) if reason is not None else client.uncordon()
    if as_json:
        emit_json({"node": client.name, **held.to_json()})
        return
    settings.say(f"Cordoned node {client.name}: new VMs go elsewhere (`virshle node uncordon "
                 f"{client.name}` undoes it)." if held.cordoned else
                 f"Uncordoned node {client.name}: it takes new VMs again.")


@click.command("drain")
@click.argument("name", metavar="NAME", shell_complete=node_names)
@click.option("--live", is_flag=True,
              help="Move running VMs while they run; without it they are stopped, moved and "
                   "started again on their new node.")
@click.option("--parallel", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Moves at a time.")
@JSON
@verbosity_options
@click.pass_obj
def node_drain(settings: Settings, name: str, live: bool, parallel: int, as_json: bool) -> None:
    """Empty a node: cordon it, then move every VM to the other nodes (chosen by the
    placement plugin, as vm create does). One line per VM; exit 1 if any stayed.

    \b
    Examples:
      virshle node drain remote_1 --live
      virshle node uncordon remote_1     # once it is back
    """
    from ..client.drain import drain
    from .render import emit_json

    results = drain(settings.clients(name, "NAME")[0], settings.clients(None), live, parallel,
                    on_result=None if as_json else lambda line: settings.say(line))
    if as_json:
        emit_json(results)
    if any(r["error"] for r in results):
        raise click.exceptions.Exit(1)
