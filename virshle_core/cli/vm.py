"""``virshle vm``: create, ls, info, rm."""

from __future__ import annotations

from typing import Any, Callable

import click

from ..api import STATES
from ..errors import UsageError
from . import actions
from .completion import node_names, template_names, vm_names
from .app import Settings, VirshleGroup, verbosity_options



@click.group(cls=VirshleGroup)
@verbosity_options
def vm() -> None:
    """Create, start, stop, list and remove virtual machines."""


class VmIdType(click.ParamType):
    """A VM id: ASCII digits only (``int()`` would also take ``٣`` or ``+3``)."""

    name = "ID"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        from ..refs import ID_PATTERN

        text = str(value)
        if not ID_PATTERN.fullmatch(text):
            self.fail(f"{text!r} is not a VM id (ids are ASCII digits, as `vm ls` shows them)",
                      param, ctx)
        return text


def vm_ref_options(func: Callable) -> Callable:
    """``--id | --name | --uuid`` and ``--node``: which VM, where."""
    func = click.option("--node", "node_name", metavar="NAME", shell_complete=node_names,
                        help="The node that has the VM (default: search every node).")(func)
    func = click.option("--uuid", "vm_uuid", metavar="UUID", help="The VM's uuid.")(func)
    func = click.option("--name", "vm_name", metavar="NAME", shell_complete=vm_names,
                        help="The VM's name.")(func)
    func = click.option("--id", "vm_id", metavar="ID", type=VmIdType(), help="The VM's id.")(func)
    return func


def _ref(vm_id: str | None, vm_name: str | None, vm_uuid: str | None):
    """The one reference given, in its own namespace (``id:7``, ``name:web``, ``uuid:…``)."""
    from ..refs import VmRef

    given = [(kind, value) for kind, value in (("id", vm_id), ("name", vm_name), ("uuid", vm_uuid))
             if value is not None]
    if len(given) != 1:
        raise click.UsageError("name the VM with exactly one of --id, --name or --uuid")
    return VmRef.of(*given[0])


@vm.command("create")
@click.option("-t", "--template", "template_name", required=True, metavar="TEMPLATE",
              shell_complete=template_names,
              help="The template to create from ([[template.vm]] name).")
@click.option("--node", "node_name", metavar="NAME", shell_complete=node_names,
              help="Create on this node.")
@click.option("-n", "--count", type=int, default=1, show_default=True, help="How many VMs.")
@click.option("--name", "vm_name", metavar="NAME", help="The VM's name (default: a random one).")
@click.option("-u", "--user-data", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="User-data for the guest's first boot (#cloud-config, a #! script or MIME); "
                   "replaces the template's user_data.")
@click.option("--autostart", is_flag=True,
              help="Start it whenever its node daemon starts and finds it stopped.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_create(settings: Settings, template_name: str, node_name: str | None, count: int,
              vm_name: str | None, user_data: Any, autostart: bool, as_json: bool) -> None:
    """Create VMs from a template; all of them or none.

    Without --node, the load balancer picks a node that is online, has room
    and offers the template (weighted by [[node]] weight).

    \b
    Examples:
      virshle vm create -t xs
      virshle vm create -t xs -n 3 --name web     # web-1, web-2, web-3
      virshle vm create -t xs --node remote_1 --json
      virshle vm create -t xs --name db --autostart
    """
    if count < 1:
        raise click.BadParameter("must be at least 1", param_hint="-n/--count")
    text = None
    if user_data is not None:
        try:
            text = actions.read_user_data(user_data)
        except UsageError as exc:
            raise click.BadParameter(exc.message, param_hint="--user-data") from None
    actions.create(settings, template_name, count, vm_name, node_name, text, as_json,
                   autostart=autostart)


@vm.command("ls")
@click.option("--node", "node_name", metavar="NAME", shell_complete=node_names,
              help="Only this node's VMs.")
@click.option("--state", "state_filter",
              type=click.Choice(STATES),
              help="Only VMs in this state.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_ls(settings: Settings, node_name: str | None, state_filter: str | None, as_json: bool) -> None:
    """List VMs of every node, in parallel; -v adds disks and ips, -vv dates, -vvv uuids.

    \b
    Examples:
      virshle vm ls -v
      virshle vm ls --state running --json
    """
    from .listing import list_vms

    if list_vms(settings, node_name, state_filter, as_json):
        raise click.exceptions.Exit(1)


@vm.command("info")
@vm_ref_options
@click.option("--refresh", is_flag=True,
              help="Ask the VM's hypervisor for its state (the node otherwise follows it).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_info(settings: Settings, vm_id, vm_name, vm_uuid, node_name, refresh: bool,
            as_json: bool) -> None:
    """Show one VM."""
    actions.info(settings, _ref(vm_id, vm_name, vm_uuid), node_name, refresh, as_json)


@vm.command("start")
@vm_ref_options
@click.option("--attach", is_flag=True, help="Then join this terminal to its serial console.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_start(settings: Settings, vm_id, vm_name, vm_uuid, node_name, attach: bool, as_json: bool) -> None:
    """Boot a VM (and with --attach, show its console; Ctrl-] detaches).

    \b
    Examples:
      virshle vm start --id 1
      virshle vm start --name web-1 --attach
    """
    actions.start(settings, _ref(vm_id, vm_name, vm_uuid), node_name, as_json, attach)


@vm.command("stop")
@vm_ref_options
@click.option("-f", "--force", is_flag=True, help="Kill the VM at once instead of asking the guest.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_stop(settings: Settings, vm_id, vm_name, vm_uuid, node_name, force: bool, as_json: bool) -> None:
    """Stop a VM: the ACPI power button, then a kill after [host] stop_timeout."""
    actions.stop(settings, _ref(vm_id, vm_name, vm_uuid), node_name, force, as_json)


SETTINGS = {"autostart": "true or false: start it whenever its node daemon starts"}


@vm.command("set")
@click.argument("words", nargs=-1, metavar="[NAME] KEY=VALUE...")
@vm_ref_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_set(settings: Settings, words: tuple[str, ...], vm_id, vm_name, vm_uuid, node_name,
           as_json: bool) -> None:
    """Change a VM's settings.

    \b
    Settings:
      autostart=true|false   start it whenever its node daemon starts

    \b
    Examples:
      virshle vm set web-1 autostart=true
      virshle vm set --id 7 autostart=false
    """
    from .. import api

    words = list(words)
    if words and "=" not in words[0] and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)  # `vm set NAME key=value`, as libvirt's and Incus's verbs read
    if not words:
        raise click.UsageError("say what to change: KEY=VALUE (settings: "
                               + ", ".join(SETTINGS) + ")")
    change = api.VmChange()
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or key not in SETTINGS:
            raise click.BadParameter(f"{word!r}: settings are " + "; ".join(
                f"{k}={v}" for k, v in SETTINGS.items()), param_hint="KEY=VALUE")
        truth = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}.get(value.lower())
        if truth is None:
            raise click.BadParameter(f"{key} must be true or false, not {value!r}",
                                     param_hint="KEY=VALUE")
        change.autostart = truth
    client, vm = actions.find_vm(settings, _ref(vm_id, vm_name, vm_uuid), node_name)
    changed = client.change_vm(actions.uuid_ref(vm), change)
    changed.node = client.name
    if as_json:
        from .render import emit_json

        emit_json(changed)
    else:
        settings.say(f"VM {changed.name}: autostart is {'on' if changed.autostart else 'off'}.")


@vm.command("attach")
@vm_ref_options
@verbosity_options
@click.pass_obj
def vm_attach(settings: Settings, vm_id, vm_name, vm_uuid, node_name) -> None:
    """Join this terminal to a running VM's serial console; Ctrl-] detaches."""
    from .console import attach as attach_console

    client, vm = actions.find_vm(settings, _ref(vm_id, vm_name, vm_uuid), node_name)
    attach_console(client, actions.uuid_ref(vm), vm.name)


@vm.command("logs")
@vm_ref_options
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until Ctrl-C.")
@verbosity_options
@click.pass_obj
def vm_logs(settings: Settings, vm_id, vm_name, vm_uuid, node_name, follow: bool) -> None:
    """Print what the VM's serial console printed (kept even while nobody is attached)."""
    import sys

    client, document = actions.find_vm(settings, _ref(vm_id, vm_name, vm_uuid), node_name)
    response = client.logs(actions.uuid_ref(document), follow=follow)
    out = sys.stdout.buffer
    try:
        for chunk in response.iter_chunks():
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        response.close()


@vm.command("rm")
@vm_ref_options
@click.option("-f", "--force", is_flag=True, help="Stop a running VM first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_rm(settings: Settings, vm_id, vm_name, vm_uuid, node_name, force: bool, as_json: bool) -> None:
    """Remove a VM: its process, disks, directory and row."""
    actions.remove(settings, _ref(vm_id, vm_name, vm_uuid), node_name, force, as_json)
