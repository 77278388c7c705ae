"""``vm launch`` (and ``vm create --start``): create, then start, as ``incus launch`` and
``multipass launch`` do; ``--wait-ip`` waits for each lease, ``--ssh`` then logs in.

A VM whose start fails stays, created, and the message says how to remove it (so that
what went wrong can be looked at: its console log, its node's); ``--rm-on-failure``
removes it instead."""

from __future__ import annotations

import time
from typing import Any

import click

from . import actions
from .app import Settings
from .render import echo

WAIT_IP_TIMEOUT = 180.0
"""Seconds ``--wait-ip`` waits for a guest's lease (a Debian cloud image under TCG takes
about a minute to ask)."""


def launch_options(func):
    """The options ``vm launch`` adds to ``vm create``'s (``vm create --start`` takes them)."""
    for option in reversed([
        click.option("--wait-ip", is_flag=True,
                     help="Then wait for each VM's DHCP lease and print its address."),
        click.option("--ssh", "open_ssh", is_flag=True,
                     help="Then log in to it with `vm ssh` (one VM; implies --wait-ip)."),
        click.option("--rm-on-failure", is_flag=True,
                     help="Remove a VM whose start failed (by default it stays, created)."),
    ]):
        func = option(func)
    return func


def start_created(settings: Settings, created: list, wait_ip: bool, open_ssh: bool,
                  rm_on_failure: bool, as_json: bool) -> None:
    """Start the VMs just created; then their leases, then ssh. Exit 1 if a start failed."""
    from ..errors import VirshleError
    from ..wire import api

    if open_ssh and len(created) != 1:
        raise click.UsageError("--ssh logs in to one VM: launch one (-n 1)")
    clients = {client.name: client for client in settings.clients(None)}
    say = (lambda text: None) if as_json else settings.say  # --json: one document
    started, failed = [], []
    for vm in created:
        client = clients[vm.node]
        try:
            running = client.start(actions.uuid_ref(vm))
            running.node = vm.node
            started.append(running)
            say(f"Started VM {vm.name} (id {vm.id}) on node {vm.node}.")
        except VirshleError as exc:
            failed.append(vm)
            _said_failure(settings, client, vm, exc, rm_on_failure)
    if (wait_ip or open_ssh) and started:
        started = [_with_lease(say, clients[vm.node], vm) for vm in started]
    if as_json:
        from .render import emit_json

        emit_json([api.dump(api.Vm, vm) for vm in started])
    if failed:
        raise click.exceptions.Exit(1)
    if open_ssh:
        from .verbs_cmd import vm_ssh

        click.get_current_context().invoke(
            vm_ssh, words=(started[0].name,), vm_id=(), vm_name=(), vm_uuid=(),
            node_name=started[0].node, user=None, identity=None, ssh_options=(), dry_run=False)


def _said_failure(settings: Settings, client: Any, vm: Any, exc: Exception,
                  rm_on_failure: bool) -> None:
    message = getattr(exc, "message", str(exc))
    if rm_on_failure:
        try:
            client.rm(actions.uuid_ref(vm), force=True)
        except Exception as removal:  # say both: the start's failure comes first
            echo(f"Error: VM {vm.name} did not start: {message}; removing it failed too: "
                 f"{getattr(removal, 'message', removal)}", err=True)
            return
        echo(f"Error: VM {vm.name} did not start: {message}; it was removed "
             "(--rm-on-failure).", err=True)
        return
    echo(f"Error: VM {vm.name} did not start: {message}", err=True)
    echo(f"  Hint: It stays, created: see `virshle vm logs {vm.name}`; remove it with "
         f"`virshle vm rm {vm.name}`.", err=True)


def _with_lease(say, client: Any, vm: Any) -> Any:
    """The VM once its node sees a lease for it; an error after ``WAIT_IP_TIMEOUT``."""
    from ..errors import VirshleError

    if not vm.nets:
        raise VirshleError(f"VM {vm.name!r} has no network: there is no address to wait for",
                           "Leave out --wait-ip and --ssh, or give its template a "
                           "[[template.vm.net]].", code="no_network")
    deadline = time.monotonic() + WAIT_IP_TIMEOUT
    while True:
        found = client.vm(actions.uuid_ref(vm), leases=True)
        if found.ips:
            found.node = vm.node
            say(f"VM {vm.name}: {', '.join(found.ips)}")
            return found
        if time.monotonic() > deadline:
            raise VirshleError(f"VM {vm.name!r} has no DHCP lease after "
                               f"{WAIT_IP_TIMEOUT:.0f} s", f"See what it printed: `virshle vm "
                               f"logs {vm.name}`.", code="no_lease")
        time.sleep(1)


def launch_command(create: click.Command) -> click.Command:
    """``vm launch``: ``create``'s options (and its fast path's absence), ``--start`` given."""

    def launch(**values: Any) -> None:
        click.get_current_context().invoke(create, start=True, **values)

    return click.Command("launch", callback=launch, help=LAUNCH_HELP,
                         params=[p for p in create.params if p.name != "start"])


LAUNCH_HELP = """Create VMs and start them: `vm create --start`.

A VM that does not start stays, created (the message says how to remove it);
--rm-on-failure removes it.

\b
Examples:
  virshle vm launch -t xs --name web
  virshle vm launch -t debian --wait-ip --ssh
  virshle vm launch -t xs -n 3 --name web --rm-on-failure
"""
