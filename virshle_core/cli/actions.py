"""What the ``vm`` commands do, without click: the click commands and the fast path run these.

``settings`` is the click command line's Settings or the fast path's view;
both have ``verbosity``, ``clients(node)`` and ``say(message)``. Errors are
raised as ``VirshleError`` (the entry point prints them and picks the exit
status); an interrupted create exits 130.
"""

from __future__ import annotations

import sys

from ..wire import api
from ..errors import UsageError
from ..client.cluster import uuid_ref
from .listing import provision_detail, show_node_warnings
from .render import echo, emit_json, state, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..verbs import Verb


REDRAW = 0.1
"""Seconds between two drawings of a progress line."""


class ProgressLine:
    """One line on stderr for long work, shown only on a terminal and after a moment."""

    def __init__(self, delay: float = 0.5):
        import time

        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.delay = delay
        self.shown = False
        self.what = ""
        self.since = self.drawn = self.started
        self.longest = 0

    def update(self, what: str, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if what != self.what:  # a new piece of work: its rate starts now
            self.what, self.since, self.drawn = what, now, 0.0
        elif done < total and now - self.drawn < REDRAW:
            return  # a pipe reports every 64 KiB: draw ten times a second, not thousands
        if not self.enabled or now - self.started < self.delay:
            return
        self.drawn = now
        from ..units import human_size
        from .render import columns

        width = 30
        filled = int(width * done / total) if total else width
        rate = done / (now - self.since) if now > self.since else 0
        text = (f"{what}: [{'#' * filled}{' ' * (width - filled)}] "
                f"{100 * done / max(total, 1):5.1f}% {human_size(done)} of "
                f"{human_size(total)}, {human_size(rate)}/s")
        room = (columns() or 80) - 1  # the last column would wrap the line on some terminals
        sys.stderr.write("\r" + text[:room].ljust(min(self.longest, room)))
        self.longest = max(self.longest, len(text))  # what a shorter line must blank out
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False


def find_vm(settings, ref, node_name: str | None, leases: bool = False) -> tuple[Any, api.Vm]:
    """The node client and VM for ``ref``, on every node unless --node."""
    from ..client.cluster import find_vm as find

    return find(settings.clients(node_name), ref, leases=leases)


def read_user_data(path: str) -> str:
    """The text of a user-data file; a binary, huge or unreadable file is exit 2."""
    from ..vm.userdata import USER_DATA_MAX, user_data_problem

    try:
        if path == "-":
            data = sys.stdin.buffer.read(USER_DATA_MAX + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(USER_DATA_MAX + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", code="bad_user_data")
    if len(data) > USER_DATA_MAX:
        raise UsageError(f"{path} is over {USER_DATA_MAX} bytes "
                                 f"({USER_DATA_MAX // 1024**2} MiB), the most a VM's user-data may be",
                                 code="bad_user_data")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not a text file (byte {exc.start} is not UTF-8); "
                                 "user-data is a #cloud-config, a script or MIME text",
                                 code="bad_user_data") from None
    problem = user_data_problem(text)
    if problem:
        raise UsageError(f"{path} {problem}", code="bad_user_data")
    return text


def create(settings, template_name: str, count: int, vm_name: str | None, node_name: str | None,
           user_data: str | None, as_json: bool, autostart: bool = False,
           shown: bool = True) -> list:
    """``vm create``: all of them or none; ``user_data`` is the file's text. The VMs made,
    said (unless not ``shown``: ``vm launch`` says them once started)."""
    if vm_name is not None:  # checked here too, before any node is asked
        from ..wire.refs import validate_name

        validate_name(vm_name if count == 1 else f"{vm_name}-{count}")
    settings.warn_config()
    body = api.CreateRequest(template=template_name, user_data=user_data, autostart=autostart)
    from ..client.cluster import create_placed, place

    if node_name is not None:
        settings.clients(node_name)  # an unknown node is this CLI's error, with its names
    plan = place(settings.clients(None), template_name, count, node_name)
    bar = ProgressLine()
    try:
        created = create_placed(plan, body, vm_name, on_progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        echo("Interrupted: the create was cancelled; nodes undo what they had begun.", err=True)
        raise SystemExit(130) from None
    finally:
        bar.close()
    if as_json and shown:
        emit_json(created)
        return created
    for vm in created if not as_json else ():
        settings.say(f"Created VM {vm.name} (id {vm.id}) on node {vm.node} "
                     f"from template {vm.template}.")
    return created


def info(settings, ref, node_name: str | None, refresh: bool, as_json: bool) -> None:
    """``vm info``."""
    from ..units import human_size

    client, vm = find_vm(settings, ref, node_name, leases=True)
    if refresh:
        vm = client.vm(uuid_ref(vm), refresh=True)
        vm.node = client.name
    show_node_warnings(settings, [client])
    if as_json:
        emit_json(vm)
        return
    rows = [
        ("name", vm.name), ("id", vm.id), ("uuid", vm.uuid), ("node", vm.node),
        ("template", vm.template), ("owner", vm.owner or "-"), ("state", state(vm.state)),
        ("vcpu", vm.vcpu),
        ("vram", human_size(vm.vram)),
        ("disks", "\n".join(f"{d.name} {human_size(d.size)} {d.path}" for d in vm.disks) or "-"),
        ("nets", "\n".join(f"{n.name} ({n.type}) {n.mac or ''}" for n in vm.nets) or "-"),
        ("ips", ", ".join(vm.ips) or "-"),
        ("provision", provision_detail(vm.provision)),
        ("autostart", "on" if vm.autostart else "off"),
        ("snapshots", _snapshot_names(client, vm)),
        ("created", vm.created_at), ("updated", vm.updated_at),
    ]
    echo(table(["field", "value"], rows, wrap=["value"]))  # paths whole, on more lines


def _snapshot_names(client, vm: api.Vm) -> str:
    from ..errors import VirshleError

    try:
        return ", ".join(snapshot.name for snapshot in client.snapshot_ls(uuid_ref(vm))) or "-"
    except VirshleError:  # a daemon older than snapshots
        return "?"


def one(settings, verb: "Verb", ref, node_name: str | None, values: dict, as_json: bool,
        attach: bool = False) -> None:
    """A verb on the one VM ``ref`` names (both command lines; several VMs are
    ``cli/bulk.py``'s): its reply as JSON, or the line said of it (a VM in a state where
    the verb has nothing to do says so). ``attach``: then join its console (``vm start``)."""
    client, vm = find_vm(settings, ref, node_name)
    result = client.perform(verb, uuid_ref(vm), **values)
    if as_json and not attach:
        emit_json(result)
    elif vm.state in verb.done and getattr(result, "state", None) == vm.state:
        settings.say(f"VM {vm.name} is {vm.state} already; nothing to do.")
    else:
        settings.say(verb.say(vm, client.name, result, values), err=attach)
    if attach:
        from .console import attach as attach_console

        attach_console(client, uuid_ref(vm), vm.name)
