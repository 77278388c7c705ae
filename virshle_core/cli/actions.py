"""What the ``vm`` commands do, without click: the click commands and the fast path run these.

``settings`` is the click command line's Settings or the fast path's view;
both have ``verbosity``, ``clients(node)`` and ``say(message)``. Errors are
raised as ``VirshleError`` (the entry point prints them and picks the exit
status); an interrupted create exits 130.
"""

from __future__ import annotations

import sys

from ..errors import NotFound, UsageError, VirshleError
from .listing import provision_detail, show_node_warnings
from .render import echo, emit_json, state, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ProgressLine:
    """One line on stderr for long work, shown only on a terminal and after a moment."""

    def __init__(self, delay: float = 0.5):
        import time

        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.delay = delay
        self.shown = False
        self.what = ""
        self.since = self.started

    def update(self, what: str, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if what != self.what:  # a new piece of work: its rate starts now
            self.what, self.since = what, now
        if not self.enabled or now - self.started < self.delay:
            return
        from ..units import human_size

        width = 30
        filled = int(width * done / total) if total else width
        rate = done / (now - self.since) if now > self.since else 0
        sys.stderr.write(f"\r{what}: [{'#' * filled}{' ' * (width - filled)}] "
                         f"{100 * done / max(total, 1):5.1f}% {human_size(done)} of "
                         f"{human_size(total)}, {human_size(rate)}/s   ")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False


def uuid_ref(document: dict) -> str:
    """The wire reference of a VM document: its uuid, which never changes."""
    return f"uuid:{document['uuid']}"


def find_vm(settings, ref, node_name: str | None) -> tuple[Any, dict]:
    """The node client and VM document for ``ref``, searching every node unless --node."""
    from ..client import fan_out

    clients = settings.clients(node_name)
    found, unavailable = [], []
    for client, document, error in fan_out(clients, lambda c: c.vm(str(ref))):
        if error is None:
            found.append((client, document))
        elif not isinstance(error, NotFound):
            unavailable.append((client, error))
    if len(found) > 1:
        names = ", ".join(c.name for c, _ in found)
        raise UsageError(f"VM {ref.label} exists on several nodes: {names}",
                         "Choose one with --node.", code="ambiguous")
    if found:
        client, document = found[0]
        document["node"] = client.name
        return client, document
    if len(clients) == 1 and unavailable:
        raise unavailable[0][1]
    where = f"node {clients[0].name!r}" if len(clients) == 1 else "any node"
    extra = "".join(f"; node {c.name} unavailable: {e.message}" for c, e in unavailable)
    raise NotFound(f"no VM with {ref.label} on {where}{extra}" if ref.kind != "name"
                   else f"no VM {ref.value!r} on {where}{extra}",
                   "List the VMs with `virshle vm ls`.", code="vm_not_found")


def read_user_data(path: str) -> str:
    """The text of a user-data file; a binary, huge or unreadable file is exit 2."""
    from ..lifecycle import USER_DATA_MAX, user_data_problem

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


def place(settings, template_name: str, count: int, node_name: str | None) -> list:
    """The node client for each of ``count`` new VMs: --node, or the balancer's choice.

    With a single managed node (of weight above 0) there is nothing to choose: the node
    itself checks the template, the count and its limits, and its errors name it as this CLI
    does. Among several, ``--node`` is checked here, so that errors use this CLI's name for it.
    """
    everyone = settings.clients(None)
    if len(everyone) == 1 and everyone[0].entry.weight > 0 and node_name in (None, everyone[0].name):
        return everyone * count
    clients = settings.clients(node_name)

    from ..client import fan_out
    from ..config import VmTemplate
    from ..models import NodeCandidate
    from ..placement import choose_node

    results = fan_out(clients, lambda c: c.info())
    template = VmTemplate(name=template_name)
    most = sum(int(info.get("max_count") or 1024) for _, info, error in results if error is None)
    if results and count > most and any(error is None for _, _, error in results):
        raise UsageError(f"count must be between 1 and {most}, not {count}: "
                         f"that is the most {'these nodes take' if len(results) > 1 else 'the node takes'} "
                         "in one create",
                         "Create fewer VMs per command; [host] max_count sets each node's maximum.",
                         code="bad_count")
    if node_name is not None:
        client, info, error = results[0]
        if error is not None:
            raise error
        fit = (info.get("templates") or {}).get(template_name)
        if fit is None:
            raise NotFound(f"node {client.name!r} offers no template {template_name!r}",
                           "List the templates with `virshle template ls`.",
                           code="template_not_found")
        if not fit.get("fits", True):
            raise VirshleError(f"template {template_name!r} does not fit on node {client.name!r}: "
                               f"{fit.get('reason')}", "Free room on it, or choose another node.",
                               code="node_full")
        return [client] * count
    online = [(c, i) for (c, i, e) in results if e is None]
    if online and not any(template_name in (i.get("templates") or {}) for _, i in online):
        offered = sorted({t for _, i in online for t in (i.get("templates") or {})})
        where = ", ".join(repr(c.name) for c, _ in online)
        raise NotFound(f"no template {template_name!r} on node{'s' if len(online) > 1 else ''} "
                       f"{where} (templates: {', '.join(offered) or 'none'})",
                       "Add it as [[template.vm]] in the node's config.toml; "
                       "`virshle template ls` lists them.", code="template_not_found")
    by_name = {client.name: client for client, _, _ in results}
    candidates = []
    for client, info, error in results:
        info = dict(info or {})
        candidates.append(NodeCandidate(
            name=client.name, weight=client.entry.weight, info=info,
            status="online" if error is None else getattr(error, "status", "offline")))
    plan = []
    for _ in range(count):
        chosen = choose_node(candidates, template)
        next(c for c in candidates if c.name == chosen).in_flight += 1
        plan.append(by_name[chosen])
    return plan


def create_placed(plan: list, body: dict, vm_name: str | None) -> list[dict]:
    """Create the planned VMs; all of them or none (created ones are removed on a failure)."""
    from ..client import fan_out

    groups: dict[str, list] = {}
    for index, client in enumerate(plan):
        groups.setdefault(client.name, []).append((index, client))
    single_node = len(groups) == 1
    bar = ProgressLine()
    finished: list[tuple[Any, dict]] = []  # what nodes answered for, to undo on Ctrl-C

    def create_on(items: list) -> list[dict]:
        client = items[0][1]
        if single_node or vm_name is None:
            request = dict(body, count=len(items))
            if vm_name is not None:
                request["name"] = vm_name
            made = client.create_vms(request, on_progress=bar.update)
            finished.extend((client, vm) for vm in made)
            return made
        made = []
        try:
            for index, _ in items:  # explicit names, so they stay unique across nodes
                made += client.create_vms(dict(body, name=f"{vm_name}-{index + 1}"),
                                          on_progress=bar.update)
                finished.append((client, made[-1]))
        except VirshleError:
            for vm in made:
                client.delete_vm(uuid_ref(vm), force=True)
            raise
        return made

    try:
        results = fan_out([items[0][1] for items in groups.values()],
                          lambda client: create_on(groups[client.name]))
    except KeyboardInterrupt:
        # Requests in flight are cut: their nodes undo them. Undo what already answered.
        bar.close()
        for client in {c.name: c for c in plan}.values():
            client.abort()
        for client, vm in finished:
            try:
                client.delete_vm(uuid_ref(vm), force=True)
            except VirshleError:
                pass
        echo("Interrupted: the create was cancelled; nodes undo what they had begun.", err=True)
        raise SystemExit(130) from None
    finally:
        bar.close()
    failures = [(client, error) for client, _, error in results if error is not None]
    created = []
    for client, vms, error in results:
        for vm in vms or []:
            vm["node"] = client.name
            created.append((client, vm))
    if failures:
        for client, vm in created:
            try:
                client.delete_vm(uuid_ref(vm), force=True)
            except VirshleError:
                pass
        client, error = failures[0]
        if len(groups) > 1:
            error.message = f"node {client.name}: {error.message} (nothing was created)"
        raise error
    return [vm for _, vm in created]


def create(settings, template_name: str, count: int, vm_name: str | None, node_name: str | None,
           user_data: str | None, as_json: bool) -> None:
    """``vm create``: all of them or none; ``user_data`` is the file's text."""
    if vm_name is not None:  # checked here too, before any node is asked
        from ..refs import validate_name

        validate_name(vm_name if count == 1 else f"{vm_name}-{count}")
    settings.warn_config()
    body: dict = {"template": template_name}
    if user_data is not None:
        body["user_data"] = user_data
    plan = place(settings, template_name, count, node_name)
    created = create_placed(plan, body, vm_name)
    if as_json:
        emit_json(created)
        return
    for item in created:
        settings.say(f"Created VM {item['name']} (id {item['id']}) on node {item['node']} "
                     f"from template {item['template']}.")


def info(settings, ref, node_name: str | None, refresh: bool, as_json: bool) -> None:
    """``vm info``."""
    from ..units import human_size

    client, document = find_vm(settings, ref, node_name)
    if refresh:
        document = dict(client.vm(uuid_ref(document), refresh=True), node=client.name)
    show_node_warnings(settings, [client])
    if as_json:
        emit_json(document)
        return
    rows = [
        ("name", document["name"]), ("id", document["id"]), ("uuid", document["uuid"]),
        ("node", document["node"]), ("template", document["template"]),
        ("state", state(document["state"])), ("vcpu", document["vcpu"]),
        ("vram", human_size(document["vram"])),
        ("disks", ", ".join(f"{d['name']} {human_size(d['size'])} {d['path']}"
                            for d in document["disks"]) or "-"),
        ("nets", ", ".join(f"{n['name']} ({n['type']}) {n['mac'] or ''}"
                           for n in document["nets"]) or "-"),
        ("ips", ", ".join(document["ips"]) or "-"),
        ("provision", provision_detail(document.get("provision"))),
        ("created", document["created_at"]), ("updated", document["updated_at"]),
    ]
    echo(table(["field", "value"], rows))


def start(settings, ref, node_name: str | None, as_json: bool, attach: bool = False) -> None:
    """``vm start`` (``attach``: then join its console)."""
    client, document = find_vm(settings, ref, node_name)
    started = client.start_vm(uuid_ref(document))
    if as_json and not attach:
        emit_json(started)
        return
    settings.say(f"Started VM {started['name']} (id {started['id']}) on node {client.name}.",
                 err=attach)
    if attach:
        from .console import attach as attach_console

        attach_console(client, uuid_ref(started), started["name"])


def stop(settings, ref, node_name: str | None, force: bool, as_json: bool) -> None:
    """``vm stop``."""
    client, document = find_vm(settings, ref, node_name)
    result = client.stop_vm(uuid_ref(document), force=force)
    if as_json:
        emit_json(result)
    elif result["was_running"]:
        settings.say(f"Stopped VM {document['name']} on node {client.name}.")
    else:
        settings.say(f"VM {document['name']} is not running (it is {result['vm']['state']}); "
                     "nothing to do.")


def remove(settings, ref, node_name: str | None, force: bool, as_json: bool) -> None:
    """``vm rm``."""
    client, document = find_vm(settings, ref, node_name)
    removed = client.delete_vm(uuid_ref(document), force=force)
    if as_json:
        emit_json(removed)
    else:
        settings.say(f"Removed VM {removed['name']} (id {removed['id']}) from node {client.name}.")
