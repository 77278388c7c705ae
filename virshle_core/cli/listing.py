"""``vm ls`` and ``node ls`` themselves: what the click commands and the fast path both run.

Nothing here imports click, pluggy or attrs: ``settings`` is anything with
``verbosity`` and ``clients(node_name)`` (the click command line's Settings,
or the fast path's view of the cached configuration).
"""

from __future__ import annotations


from .render import echo, emit_json, report_failures, state, table, warn


def list_vms(settings, node_name: str | None, state_filter: str | None, as_json: bool,
             strict: bool = False) -> int:
    """Print the VMs of every node (in parallel); the exit status: 1 when no node answered,
    or (``strict``) when any failed."""
    from ..client import fan_out, one_per_daemon
    from ..units import human_size

    results, doubles = one_per_daemon(fan_out(settings.clients(node_name),
                                              lambda c: c.vms(state_filter)))
    for message in doubles:
        warn(message)
    documents, failures = [], []
    for client, vms, error in results:
        if error is not None:
            failures.append((client.name, error))
        else:
            for vm in vms:
                vm.node = client.name  # the name this CLI knows the node by
            documents.extend(vms)
    if as_json:
        emit_json(documents)
    else:
        v = settings.verbosity
        multi = len(results) > 1
        headers = ["id", "name"] + (["node"] if multi else []) + ["vcpu", "vram", "state"]
        if v >= 1:
            headers += ["owner", "disks", "ips", "provision"]
        if v >= 2:
            headers += ["created_at", "updated_at"]
        if v >= 3:
            headers += ["uuid"]
        rows = []
        for vm in documents:
            row = [vm.id, vm.name] + ([vm.node] if multi else [])
            row += [vm.vcpu, human_size(vm.vram), state(vm.state)]
            if v >= 1:
                row += [vm.owner or "-",
                        ", ".join(f"{d.name} ({human_size(d.size)})" for d in vm.disks) or "-",
                        ", ".join(vm.ips) or "-", provision_summary(vm.provision)]
            if v >= 2:
                row += [vm.created_at, vm.updated_at]
            if v >= 3:
                row += [vm.uuid]
            rows.append(row)
        # on a narrow terminal these go first, in this order (--wide keeps them): what a
        # higher -v asked for last, so that -vvv still shows its uuids at 80 columns
        if len(failures) < len(results):  # an empty table when no node answered says nothing
            echo(table(headers, rows, optional=["provision", "disks", "owner", "updated_at",
                                                "created_at", "uuid", "node"]))
    report_failures(failures)
    show_node_warnings(settings, [client for client, _, _ in results])
    return 1 if failures and (strict or len(failures) == len(results)) else 0



def list_nodes(settings, node_name: str | None, as_json: bool) -> int:
    """``node ls`` without ``--all``: each node's status (``-v``: url and weight)."""
    from ..client import fan_out, one_per_daemon

    documents = []
    results = fan_out(settings.clients(node_name), lambda c: c.ping())
    for message in one_per_daemon(results)[1]:
        warn(message)
    for client, pong, error in results:
        status = "online" if error is None else getattr(error, "status", "offline")
        if pong is not None and pong.cordoned:  # up, but the balancer skips it
            status = "cordoned"
        doc = {"name": client.name, "url": client.entry.url, "weight": client.entry.weight,
               "status": status, **catalogued(client.entry)}
        if error is not None:
            doc["reason"] = error.message
        documents.append(doc)
    if as_json:
        emit_json(documents)
        return 0
    v = settings.verbosity
    seen = any("seen" in doc for doc in documents)
    headers = ["name", "status"] + (["url", "weight"] if v >= 1 else []) + (
        ["source", "seen"] if seen else [])
    rows = [[doc["name"], state(doc["status"])] + ([doc["url"], doc["weight"]] if v >= 1 else [])
            + ([doc.get("source", "config"), _ago(doc.get("seen"), doc.get("cached"))]
               if seen else [])
            for doc in documents]
    echo(table(headers, rows))
    for doc in documents:
        if "reason" in doc and v >= 1:
            echo(f"{doc['name']}: {doc['reason']}", err=True)
    if v < 1 and any("reason" in d for d in documents):
        echo("Some nodes are not online; -v says why.", err=True)
    return 0


def catalogued(entry) -> dict:
    """What a catalogue said of a node (``DiscoveredNode``), for ``node ls``."""
    if not getattr(entry, "source", None):
        return {}
    return {"source": entry.source, "id": entry.id, "seen": entry.seen, "cached": entry.cached,
            "labels": entry.labels}


def _ago(seen: float | None, cached: bool = False) -> str:
    """``4 s ago`` (and that it comes from a cache)."""
    if seen is None:
        return "-"
    import time

    return f"{max(0, time.time() - seen):.0f} s ago" + (" (cached)" if cached else "")


def provision_summary(provision: dict | None) -> str:
    """``nocloud, 2 keys``: what the VM was given for its first boot, in a few words."""
    if not provision:
        return "-"
    keys = len(provision.get("keys") or [])
    parts = [str(provision.get("seed", "yes"))]
    if keys:
        parts.append(f"{keys} key{'s' if keys > 1 else ''}")
    if provision.get("user_data"):
        parts.append(str(provision["user_data"]))
    return ", ".join(parts)


def provision_detail(provision: dict | None) -> str:
    """The seed, the user the keys are for, the keys' fingerprints and the user-data's kind."""
    if not provision:
        return "-"
    parts = [f"{provision.get('seed', '?')} seed"]
    if provision.get("user"):
        parts.append(f"user {provision['user']}")
    keys = provision.get("keys") or []
    parts.append("keys " + " ".join(keys) if keys else "no keys")
    parts.append(f"user-data {provision.get('user_data') or 'none'}")
    return ", ".join(parts)


def show_node_warnings(settings, clients: list) -> None:
    """What nodes noticed (e.g. an unreachable DHCP server), printed at -v."""
    if settings.verbosity < 1:
        return
    for client in clients:
        for message in client.warnings:
            warn(f"node {client.name}: {message}")



