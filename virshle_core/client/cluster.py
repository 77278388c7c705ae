"""Many nodes as one, for the command line and for Python alike: find a VM wherever it is,
place new VMs with the balancer, create them all or none.

``clients`` are NodeClients (``Settings.clients(node)`` on the command line). Nothing here
prints or exits: errors are raised as ``VirshleError``, an interrupt as KeyboardInterrupt.
"""

from __future__ import annotations

from ..wire import api
from ..errors import NotFound, UsageError, VirshleError

TYPE_CHECKING = False  # typing itself is an import the CLI's start-up avoids
if TYPE_CHECKING:
    from typing import Any, Callable

    from ..wire.refs import VmRef


def uuid_ref(vm: api.Vm) -> str:
    """The wire reference of a VM: its uuid, which never changes."""
    return f"uuid:{vm.uuid}"


def find_vm(clients: list, ref: "VmRef", leases: bool = False) -> tuple[Any, api.Vm]:
    """The node client and VM for ``ref``, searched on every one of ``clients``.

    Finding asks no hypervisor and, unless ``leases``, no DHCP server: the VM's
    ``ips`` is then empty.
    """
    from . import fan_out, one_per_daemon

    found, unavailable = [], []
    results, _ = one_per_daemon(fan_out(clients, lambda c: c.vm(str(ref), leases=leases)))
    for client, document, error in results:
        if error is None:
            found.append((client, document))
        elif not isinstance(error, NotFound):
            unavailable.append((client, error))
    moving = [(c, vm) for c, vm in found if vm.moving_to]
    if len(found) == 2 and len(moving) == 1 and len({vm.uuid for _, vm in found}) == 1:
        found = moving  # a move cut short after its target took the VM: the source settles it
    if len(found) > 1:
        names = ", ".join(c.name for c, _ in found)
        raise UsageError(f"VM {ref.label} exists on several nodes: {names}",
                         "Choose one with --node.", code="ambiguous")
    if found:
        client, vm = found[0]
        vm.node = client.name  # the name this CLI knows the node by
        return client, vm
    if len(clients) == 1 and unavailable:
        raise unavailable[0][1]
    where = f"node {clients[0].name!r}" if len(clients) == 1 else "any node"
    extra = "".join(f"; node {c.name} unavailable: {e.message}" for c, e in unavailable)
    missing = NotFound(f"no VM with {ref.label} on {where}{extra}" if ref.kind != "name"
                   else f"no VM {ref.value!r} on {where}{extra}",
                   "List the VMs with `virshle vm ls`.", code="vm_not_found")
    missing.node = clients[0].name if len(clients) == 1 else None
    raise missing


def place(everyone: list, template_name: str, count: int, node_name: str | None = None) -> list:
    """The node client for each of ``count`` new VMs: ``node_name``'s, or the balancer's choice
    among ``everyone`` (the managed nodes).

    With a single managed node (of weight above 0) there is nothing to choose: the node
    itself checks the template, the count and its limits, and its errors name it as this CLI
    does. Among several, ``node_name`` is checked here, so that errors use this CLI's name for it.
    """
    if len(everyone) == 1 and everyone[0].entry.weight > 0 and node_name in (None, everyone[0].name):
        return everyone * count
    clients = [c for c in everyone if c.name == node_name] if node_name is not None else everyone

    from ..models import NodeCandidate
    from . import fan_out, one_per_daemon

    results, _ = one_per_daemon(fan_out(clients, lambda c: c.info()))  # a daemon counts once
    most = sum(info.max_count or 1024 for _, info, error in results if error is None)
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
        fit = info.templates.get(template_name)
        if fit is None:
            raise NotFound(f"node {client.name!r} offers no template {template_name!r}",
                           "List the templates with `virshle template ls`.",
                           code="template_not_found")
        if not fit.fits:
            raise VirshleError(f"template {template_name!r} does not fit on node {client.name!r}: "
                               f"{fit.reason}", "Free room on it, or choose another node.",
                               code="node_full")
        return [client] * count
    online = [(c, i) for (c, i, e) in results if e is None]
    if online and not any(template_name in i.templates for _, i in online):
        offered = sorted({t for _, i in online for t in i.templates})
        where = ", ".join(repr(c.name) for c, _ in online)
        raise NotFound(f"no template {template_name!r} on node{'s' if len(online) > 1 else ''} "
                       f"{where} (templates: {', '.join(offered) or 'none'})",
                       "Add it as [[template.vm]] in the node's config.toml, then run "
                       "`virshle node reload`; `virshle template ls` lists them.",
                       code="template_not_found")
    by_name = {client.name: client for client, _, _ in results}
    candidates = []
    for client, info, error in results:
        candidates.append(NodeCandidate(
            name=client.name, weight=client.entry.weight, info=info.to_json() if info else {},
            status=candidate_status(info, error)))
    _check_room(candidates, template_name, count)
    plan = []
    for index in range(count):
        try:
            chosen = choose_node(candidates, template_name)
        except VirshleError as exc:
            if count > 1:
                exc.message = f"placing VM {index + 1} of {count}: {exc.message}; nothing was created"
                exc.args = (exc.message,)
            raise
        candidate = next(c for c in candidates if c.name == chosen)
        candidate.in_flight += 1
        _take_room(candidate, template_name)
        plan.append(by_name[chosen])
    return plan


def candidate_status(info, error) -> str:
    """A node's status for the placement hook: ``online``, ``cordoned`` (`node cordon`: new
    VMs go elsewhere), or why it could not be asked."""
    if error is not None:
        return getattr(error, "status", "offline")
    return "cordoned" if info.cordon is not None and info.cordon.cordoned else "online"


def _room(candidate, template_name: str) -> int | None:
    """How many more VMs of the template the node said it admits (None: no limit binds)."""
    fit = candidate.info.get("templates", {}).get(template_name)
    if fit is None or candidate.status != "online" or candidate.weight <= 0:
        return 0
    return fit.get("room", 1 if fit.get("fits") else 0)


def _check_room(candidates: list, template_name: str, count: int) -> None:
    """Refuse, before anything is made, ``count`` VMs that the nodes together cannot take."""
    rooms = {c.name: _room(c, template_name) for c in candidates}
    if count == 1 or any(room is None for room in rooms.values()):
        return
    total = sum(rooms.values())
    if total < count:
        each = ", ".join(f"{name}: {room}" for name, room in rooms.items())
        raise VirshleError(
            f"the nodes together have room for {total} of the {count} VMs of template "
            f"{template_name!r} ({each}); nothing was created",
            "Create fewer, free room, or raise [host.limits] on a node.", code="no_node_fits")


def _take_room(candidate, template_name: str) -> None:
    """Count a VM placed on ``candidate`` by this command: the placement plugin, asked again
    for the next VM, sees the node with that much less room."""
    fit = candidate.info.get("templates", {}).get(template_name)
    if fit is None or fit.get("room") is None:
        return
    fit["room"] -= 1
    if fit["room"] <= 0:
        fit["fits"] = False
        fit["reason"] = f"full with the {candidate.in_flight} VM(s) this command places there"


def create_placed(plan: list, body: api.CreateRequest, vm_name: str | None,
                  on_progress: Callable[[str, int, int], None] | None = None) -> list[api.Vm]:
    """Create the planned VMs; all of them or none (created ones are removed on a failure).

    On KeyboardInterrupt the requests in flight are cut (their nodes undo them), what
    already answered is removed, and the KeyboardInterrupt goes on.
    """
    from . import fan_out

    groups: dict[str, list] = {}
    for index, client in enumerate(plan):
        groups.setdefault(client.name, []).append((index, client))
    single_node = len(groups) == 1
    report = on_progress or (lambda what, done, total: None)
    finished: list[tuple[Any, api.Vm]] = []  # what nodes answered for, to undo on Ctrl-C

    def request(**change: Any) -> api.CreateRequest:
        return api.CreateRequest(**{**body.to_json(), **change})

    def create_on(items: list) -> list[api.Vm]:
        client = items[0][1]
        if single_node or vm_name is None or len(plan) == 1:
            change: dict = {"count": len(items), "name": vm_name}
        else:  # NAME-1..NAME-K over the nodes: each node is told the names of its share
            change = {"count": len(items), "name": None,
                      "names": [f"{vm_name}-{index + 1}" for index, _ in items]}
        made = client.create_vms(request(**change), on_progress=report)
        finished.extend((client, vm) for vm in made)
        return made

    try:
        results = fan_out([items[0][1] for items in groups.values()],
                          lambda client: create_on(groups[client.name]))
    except KeyboardInterrupt:
        # Requests in flight are cut: their nodes undo them. Undo what already answered.
        for client in {c.name: c for c in plan}.values():
            client.abort()
        for client, vm in finished:
            try:
                client.rm(uuid_ref(vm), force=True)
            except VirshleError:
                pass
        raise
    failures = [(client, error) for client, _, error in results if error is not None]
    created = []
    for client, vms, error in results:
        for vm in vms or []:
            vm.node = client.name
            created.append((client, vm))
    if failures:
        for client, vm in created:
            try:
                client.rm(uuid_ref(vm), force=True)
            except VirshleError:
                pass
        client, error = failures[0]
        if len(groups) > 1:
            error.message = f"node {client.name}: {error.message} (nothing was created)"
        raise error
    return [vm for _, vm in created]


def choose_node(candidates: list, template_name: str | None = None) -> str:
    """The name of the node the placement plugins chose; an error with every node's reason
    if none (the reasons are the plugins': ``candidate.refused``)."""
    from ..hooks import plugins

    chosen = plugins().choose_node(candidates=candidates, template_name=template_name)
    names = {c.name for c in candidates}
    if chosen is not None and chosen in names:
        return chosen
    if chosen is not None:
        raise VirshleError(f"the placement plugin chose an unknown node {chosen!r}")
    reasons = "; ".join(f"{c.name}: {c.refused or 'not chosen'}" for c in candidates) or "no nodes"
    raise VirshleError(f"no node can take this VM ({reasons})",
                       "Free room on a node, raise [host.limits], or choose one with --node.",
                       code="no_node_fits")
