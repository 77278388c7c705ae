"""``virshle vm``: create, ls, info, start, stop, attach, logs, rm; the other verbs are in
``cli/verbs_cmd.py``."""

from __future__ import annotations

from typing import Any

import click

from ..wire.api import STATES
from ..errors import UsageError
from . import actions
from .completion import node_names, template_names
from . import verbs_cmd
from .app import Settings, verbosity_options
from ..verbs import core, find
from .launch import launch_command, launch_options, start_created
from .selection import act, one_ref, one_vm, refs_of, vm_selection
from .verbs_cmd import VerbsGroup, declared



@click.group(cls=VerbsGroup)
@verbosity_options
def vm() -> None:
    """Create, start, stop, pause, snapshot, clone, list and remove virtual machines."""


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
@click.option("--start", is_flag=True, help="Then start them (as `vm launch`).")
@launch_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_create(settings: Settings, template_name: str, node_name: str | None, count: int,
              vm_name: str | None, user_data: Any, autostart: bool, start: bool, wait_ip: bool,
              open_ssh: bool, rm_on_failure: bool, as_json: bool) -> None:
    """Create VMs from a template; all of them or none.

    Without --node, the load balancer picks a node that is online, has room
    and offers the template (weighted by [[node]] weight).

    \b
    Examples:
      virshle vm create -t xs
      virshle vm create -t xs -n 3 --name web     # web-1, web-2, web-3
      virshle vm create -t xs --node remote_1 --json
      virshle vm create -t xs --name db --autostart
      virshle vm create -t xs --start --wait-ip
    """
    if count < 1:
        raise click.BadParameter("must be at least 1", param_hint="-n/--count")
    text = None
    if user_data is not None:
        try:
            text = actions.read_user_data(user_data)
        except UsageError as exc:
            raise click.BadParameter(exc.message, param_hint="--user-data") from None
    if (wait_ip or open_ssh or rm_on_failure) and not start:
        raise click.UsageError("--wait-ip, --ssh and --rm-on-failure go with --start "
                               "(or `vm launch`)")
    created = actions.create(settings, template_name, count, vm_name, node_name, text, as_json,
                             autostart=autostart, shown=not start)
    if start:
        start_created(settings, created, wait_ip, open_ssh, rm_on_failure, as_json)


@vm.command("ls")
@click.option("--node", "node_name", metavar="NAME", shell_complete=node_names,
              help="Only this node's VMs.")
@click.option("--state", "state_filter",
              type=click.Choice(STATES),
              help="Only VMs in this state.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--strict", is_flag=True, help="Exit 1 when any node could not be listed.")
@verbosity_options
@click.pass_obj
def vm_ls(settings: Settings, node_name: str | None, state_filter: str | None, as_json: bool,
          strict: bool) -> None:
    """List VMs of every node, in parallel; -v adds disks and ips, -vv dates, -vvv uuids.

    A node that cannot be listed is named on stderr and the others are listed; the exit
    status is 0 unless no node answered (or --strict).

    \b
    Examples:
      virshle vm ls -v
      virshle vm ls --state running --json
    """
    from .listing import list_vms

    if list_vms(settings, node_name, state_filter, as_json, strict):
        raise click.exceptions.Exit(1)


@vm.command("info")
@one_vm
@click.option("--refresh", is_flag=True,
              help="Ask the VM's hypervisor for its state (the node otherwise follows it).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def vm_info(settings: Settings, name, vm_id, vm_name, vm_uuid, node_name, refresh: bool,
            as_json: bool) -> None:
    """Show one VM.

    \b
    Examples:
      virshle vm info web-1
      virshle vm info --id 7 --refresh --json
    """
    actions.info(settings, one_ref(vm_id, vm_name, vm_uuid, _named(name)), node_name, refresh,
                 as_json)


def _named(name: str | None) -> tuple:
    return (name,) if name else ()


@declared("vm", "start")
@vm_selection
@click.option("--attach", is_flag=True, help="Then join this terminal to its serial console.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def start_command(settings: Settings, names, vm_id, vm_name, vm_uuid, node_name, state, every,
                  attach: bool, as_json: bool) -> None:
    if attach and (len(refs_of(names, vm_id, vm_name, vm_uuid)) != 1 or state or every):
        raise click.UsageError("--attach joins one VM's console: name one VM")
    act(settings, find("vm", "start"), names, vm_id, vm_name, vm_uuid, node_name, state, every,
        as_json, attach=attach)


@vm.command("attach")
@one_vm
@verbosity_options
@click.pass_obj
def vm_attach(settings: Settings, name, vm_id, vm_name, vm_uuid, node_name) -> None:
    """Join this terminal to a running VM's serial console; Ctrl-] detaches.

    \b
    Examples:
      virshle vm attach web-1
    """
    from .console import attach as attach_console

    client, vm = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid, _named(name)),
                                 node_name)
    attach_console(client, actions.uuid_ref(vm), vm.name)


@vm.command("logs")
@one_vm
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until Ctrl-C.")
@click.option("--raw", is_flag=True,
              help="Keep the terminal's escape codes (kept anyway when printing to a terminal).")
@verbosity_options
@click.pass_obj
def vm_logs(settings: Settings, name, vm_id, vm_name, vm_uuid, node_name, follow: bool,
            raw: bool) -> None:
    """Print what the VM's serial console printed (kept even while nobody is attached).

    Printed to a file or a pipe, the guest's terminal escape codes (colours, cursor
    moves, its queries of the terminal) are left out; --raw keeps them.

    \b
    Examples:
      virshle vm logs web-1
      virshle vm logs --name web-1 --follow
      virshle vm logs web-1 --raw > console.txt
    """
    import sys

    from .render import EscapeStripper

    client, document = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid, _named(name)),
                                       node_name)
    response = client.logs(actions.uuid_ref(document), follow=follow)
    out = sys.stdout.buffer
    strip = None if raw or sys.stdout.isatty() else EscapeStripper()
    try:
        for chunk in response.iter_chunks():
            out.write(strip.feed(chunk) if strip else chunk)
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        response.close()


vm.add_command(launch_command(vm_create))
verbs_cmd.add_commands(vm, core())  # start, stop, rm, pause, snapshot create...: the declared verbs
for _command in verbs_cmd.COMMANDS:
    vm.add_command(_command)
