"""What the dashboard shows and does, through the command line's own client: every call
here blocks (the server runs it in a thread) and raises ``VirshleError`` as the commands
do."""

from __future__ import annotations

from typing import Any

from virshle_core.errors import NotFound, UsageError, VirshleError

STATES = ("created", "running", "paused", "shutdown", "crashed")
COLUMNS = ("name", "node", "state", "vcpu", "vram", "ips", "provision")
DESTRUCTIVE = {"rm": "Remove", "force-stop": "Force stop", "restore": "Restore a snapshot"}


def nodes(settings) -> list[dict]:
    """A card per node: its status, cordon, VMs and resources, or why it is not there."""
    from virshle_core.client import fan_out

    cards = []
    for client, info, error in fan_out(settings.clients(), lambda c: c.info()):
        card: dict[str, Any] = {"name": client.name, "url": client.entry.url}
        if error is not None:
            card.update(status=getattr(error, "status", "offline"), error=error.message,
                        hint=getattr(error, "hint", ""))
        else:
            cordon = info.cordon
            card.update(status="cordoned" if cordon and cordon.cordoned else "online",
                        reason=cordon.reason if cordon and cordon.cordoned else "",
                        vms=info.vms.total, by_state=info.vms.by_state,
                        resources=[_bar("cpu", info.cpu, "cpu"), _bar("memory", info.ram),
                                   _bar("disk", info.disk)])
        cards.append(card)
    return cards


def _bar(name: str, usage, unit: str = "bytes") -> dict:
    """Used and reserved as shares of the whole, and the limit ([host.limits])."""
    from virshle_core.units import human_size

    def amount(value: float) -> str:
        return human_size(value) if unit == "bytes" else f"{value:g}"

    total = usage.total or 1
    whole = f"{amount(usage.total)} cpus" if unit == "cpu" else amount(usage.total)
    reserved = f"{amount(usage.reserved)} vcpu" if unit == "cpu" else amount(usage.reserved)
    return {"name": name, "used_pct": round(100 * usage.used / total, 1),
            "reserved_pct": usage.reserved_pct, "limit_pct": usage.limit_pct,
            "text": f"{amount(usage.used)} of {whole} used; {reserved} reserved "
                    f"(limit {usage.limit_pct:g}%)"}


def vms(settings, text: str = "", state: str = "", sort: str = "name",
        descending: bool = False) -> tuple[list[dict], list[dict]]:
    """Every VM of every node (filtered, sorted), and the nodes that could not be listed."""
    from virshle_core.client import fan_out
    from virshle_core.units import human_size

    rows, failures = [], []
    for client, listed, error in fan_out(settings.clients(), lambda c: c.vms()):
        if error is not None:
            failures.append({"node": client.name, "error": error.message})
            continue
        for vm in listed:
            rows.append({"name": vm.name, "node": client.name, "uuid": vm.uuid,
                         "state": vm.state, "vcpu": vm.vcpu, "vram": vm.vram,
                         "vram_text": human_size(vm.vram), "ips": ", ".join(vm.ips or []),
                         "provision": _provision(vm.provision)})
    text = text.strip().lower()
    if text:
        rows = [r for r in rows if any(text in str(r[c]).lower() for c in COLUMNS)]
    if state in STATES:
        rows = [r for r in rows if r["state"] == state]
    key = sort if sort in COLUMNS else "name"
    rows.sort(key=lambda r: (r[key] if not isinstance(r[key], str) else r[key].lower(),
                             r["name"]), reverse=descending)
    return rows, failures


def _provision(provision: dict | None) -> str:
    if not provision:
        return "-"
    keys = len(provision.get("keys") or [])
    return ", ".join([str(provision.get("seed", "yes"))] + ([f"{keys} keys"] if keys else []))


def client_of(settings, node: str):
    chosen = [c for c in settings.clients() if c.name == node]
    if not chosen:
        raise NotFound(f"no node named {node!r}", code="node_not_found")
    return chosen[0]


def vm_page(settings, node: str, uuid: str) -> dict:
    """One VM: itself, its snapshots, the end of its console log, its cloud-init status."""
    client = client_of(settings, node)
    vm = client.vm(uuid)
    try:
        snapshots = client.snapshot_ls(uuid)
    except VirshleError:
        snapshots = []
    log = console_tail(client, uuid)
    return {"vm": vm, "node": node, "snapshots": snapshots, "log": log,
            "cloud_init": cloud_init_status(log), "others": [c.name for c in settings.clients()
                                                            if c.name != node]}


def console_tail(client, uuid: str, size: int = 16384) -> str:
    from virshle_core.cli.render import EscapeStripper

    return EscapeStripper().feed(client.console_tail(uuid, size)).decode(errors="replace")


def cloud_init_status(log: str) -> str:
    """What cloud-init said on the console, last: finished, running, or nothing."""
    finished, running = log.rfind(" finished at "), log.rfind("Cloud-init v.")
    if finished >= 0 and finished >= running - 200:
        return "done"
    if running >= 0:
        return "running"
    return "not seen on the console"


def act(settings, node: str, uuid: str, action: str, form: dict) -> str:
    """Run ``action`` on the VM; what happened, as the command line says it."""
    client = client_of(settings, node)
    if action == "start":
        client.start(uuid)
    elif action in ("stop", "force-stop"):
        client.stop(uuid, force=action == "force-stop")
    elif action in ("pause", "resume", "reboot"):
        getattr(client, action)(uuid)
    elif action == "snapshot":
        name = form.get("name", "").strip()
        if not name:
            raise UsageError("a snapshot needs a name", code="bad_name")
        client.snapshot_create(uuid, name=name, memory=form.get("memory") == "on")
        return f"Snapshot {name!r} taken."
    elif action == "restore":
        client.snapshot_restore(uuid, snapshot=form.get("snapshot", ""))
        return f"Snapshot {form.get('snapshot')!r} restored."
    elif action == "clone":
        from virshle_core.wire import api

        made = client.clone_vm(uuid, api.CloneRequest(name=form.get("name") or None))
        return f"Cloned as {made.name!r}."
    elif action == "migrate":
        from virshle_core.client.migrate import describe, migrate

        target = client_of(settings, form.get("to", ""))
        return describe(migrate(client, client.vm(uuid), target, live=form.get("live") == "on"))
    elif action == "rm":
        client.rm(uuid, force=True)
        return "Removed."
    else:
        raise UsageError(f"no action {action!r}", code="bad_action")
    return {"start": "Started.", "stop": "Stopped.", "force-stop": "Stopped (forced).",
            "pause": "Paused.", "resume": "Resumed.", "reboot": "Rebooting."}[action]


def templates(settings) -> list[dict]:
    """The templates every node offers, with the nodes that offer each."""
    from virshle_core.client import fan_out

    merged: dict[str, dict] = {}
    for client, offered, error in fan_out(settings.clients(), lambda c: c.templates()):
        for template in offered if error is None else ():
            merged.setdefault(template.name, {"name": template.name, "nodes": []})[
                "nodes"].append(client.name)
    return sorted(merged.values(), key=lambda t: t["name"])


def create(settings, form: dict) -> list:
    """``vm create`` from the form: the VMs made, on the node chosen or placed."""
    from virshle_core.client.cluster import create_placed, place
    from virshle_core.wire import api

    template = form.get("template", "")
    try:
        count = int(form.get("count") or 1)
    except ValueError:
        raise UsageError(f"count must be a number, not {form.get('count')!r}",
                         code="bad_count") from None
    user_data, keys = form.get("user_data", "").strip(), form.get("keys", "").split("\n")
    keys = [key.strip() for key in keys if key.strip()]
    if user_data and keys:
        raise UsageError("give user-data or keys, not both",
                         "Put the keys in the user-data (ssh_authorized_keys).", code="bad_body")
    if keys:
        import json

        user_data = "#cloud-config\n" + json.dumps({"ssh_authorized_keys": keys})
    plan = place(settings.clients(), template, count, form.get("node") or None)
    body = api.CreateRequest(template=template, count=count, user_data=user_data or None)
    return create_placed(plan, body, form.get("name", "").strip() or None)
