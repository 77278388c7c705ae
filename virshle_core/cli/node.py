"""``virshle node``: init, serve, ls, ping."""

from __future__ import annotations

import time

import click

from .app import Settings, verbosity_options
from .verbs_cmd import VerbsGroup, declared
from .completion import node_names
from .render import about
from .render import bar, emit_json, state, table



@click.group(cls=VerbsGroup)
@verbosity_options
def node() -> None:
    """Prepare, run and list nodes (hosts that run VMs)."""


@declared("node", "init")
@click.option("--all", "all_", is_flag=True, help="Everything below (the default).")
@click.option("--dir", "dir_", is_flag=True, help="Directories under [host] root, and the group 'virshle'.")
@click.option("--db", is_flag=True, help="The VM database (created or migrated).")
@click.option("--net", is_flag=True, help="Host network, through the plugins (bridge, orphans).")
@click.option("--force-new", is_flag=True,
              help="With --db: set a broken database and its VM directories aside "
                   "(nothing is deleted) and start an empty one.")
@click.option("--systemd", is_flag=True,
              help="Also install the daemon as a systemd service (virshle.service) and enable it.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@verbosity_options
@click.pass_obj
def node_init(settings: Settings, all_: bool, dir_: bool, db: bool, net: bool, force_new: bool,
              systemd: bool, as_json: bool) -> None:
    from ..daemon.init import PARTS, init_node

    parts = set(PARTS) if all_ or not (dir_ or db or net) else {
        p for p, on in (("dir", dir_), ("db", db), ("net", net)) if on
    }
    if force_new and "db" not in parts:
        raise click.UsageError("--force-new goes with --db (or --all)")
    daemon = _serving(settings)
    if daemon is not None:  # the daemon does it (its event stream hears it), or refuses
        done = daemon.init(parts=sorted(parts), force_new=force_new).done
        for message in daemon.warnings:  # what it left alone, as node init in this process says
            click.echo(f"Warning: {message}", err=True)
    else:
        done = init_node(settings.config, parts, node_name=settings.config.host.name,
                         force_new=force_new)
    if systemd:
        from ..daemon.service import install

        done["systemd"] = install(settings.config)
    if as_json:
        emit_json({"root": str(settings.config.host.root_path), "done": done})
        return
    if settings.verbosity < 0:
        return
    for part in ("dir", "db", "net", "systemd"):
        if part in done:
            items = done[part] or ["already in place"]
            click.echo(f"{part:<7} " + "\n        ".join(items))
    from ..daemon.service import systemd_running

    # a unit written where systemd does not run is started elsewhere: here, serve it
    how = "`systemctl start virshle`" if systemd and systemd_running() else "`virshle node serve`"
    click.echo(f"Node ready at {settings.config.host.root_path}. Start it with {how}.")


@declared("node", "gc")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def node_gc(settings: Settings, dry_run: bool, as_json: bool) -> None:
    from ..daemon.init import gc_node

    daemon = _serving(settings)
    if daemon is not None:
        removed = daemon.gc(dry_run=dry_run).removed
    else:
        removed = gc_node(settings.config, dry_run, node_name=settings.config.host.name)
    if as_json:
        emit_json({"dry_run": dry_run, "removed": removed})
        return
    if settings.verbosity < 0:
        return
    verb = "would remove" if dry_run else "removed"
    for line in removed:
        click.echo(f"{verb} {line}")
    if not removed:
        click.echo("Nothing to remove: every device that looks like Virshle's has its node's mark.")


def _serving(settings: Settings):
    """A client of this host's own daemon, when one answers on its socket; else None."""
    from ..client import NodeClient
    from ..config import NodeEntry
    from ..errors import NodeUnavailable

    host = settings.config.host
    client = NodeClient(NodeEntry(name=host.name, url=f"unix://{host.socket_path}"))
    try:
        client.ping()
    except NodeUnavailable:
        return None
    return client


@node.command("serve")
@verbosity_options
@click.pass_obj
def node_serve(settings: Settings) -> None:
    """Run the node daemon on [host] root/virshle.sock until SIGTERM or Ctrl-C."""
    from .. import log

    # A daemon says that it started and stopped, even without -v.
    log.configure(max(settings.verbosity, 0) + 1 if settings.verbosity >= 0 else -1)
    from ..daemon.server import serve

    settings.warn_config()
    serve(settings.config, node_name=settings.config.host.name)


@node.command("ls")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Add cpu, ram and disk: total, used and reserved (also `-all`).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--node", "node_name", metavar="NAME", shell_complete=node_names,
              help="Only this node.")
@verbosity_options
@click.pass_obj
def node_ls(settings: Settings, all_: bool, as_json: bool, node_name: str | None) -> None:
    """List the managed nodes and their status (with --all, their health).

    --json gives every field: what -vvv and --all show.
    """
    from ..client import fan_out

    clients = settings.clients(node_name)
    if not all_ and settings.verbosity < 2 and not as_json:
        from .listing import list_nodes

        list_nodes(settings, node_name, as_json)  # what the fast path runs too
        return

    detailed = all_ or as_json or settings.verbosity >= 2  # -vv: counts and sizes

    def probe(client):
        return client.info() if detailed else client.ping()

    from ..units import human_size
    from .listing import catalogued

    results = fan_out(clients, probe)
    results_info = {client.name: answer for client, answer, error in results if detailed and not error}
    documents = []
    for client, answer, error in results:
        cordon = getattr(answer, "cordon", None)
        status = "online" if error is None else getattr(error, "status", "offline")
        doc = {"name": client.name, "url": client.entry.url, "weight": client.entry.weight,
               "status": "cordoned" if cordon is not None and cordon.cordoned else status,
               **catalogued(client.entry)}
        if error is not None:
            doc["reason"] = error.message
        if all_ or as_json:
            for key in ("cpu", "ram", "disk", "vms", "saturation", "saturated", "hostname",
                        "cordon"):
                doc[key] = getattr(answer, key, None)
        documents.append(doc)
    if as_json:
        emit_json(documents)
        return
    v = settings.verbosity
    headers = ["name", "status"]
    if v >= 1:
        headers += ["url", "weight"]
    if v >= 2 and not all_:
        headers += ["vms", "cpu", "ram", "disk"]
    if all_:
        # reserved (by VMs, against [host.limits]) and used (by the host), per resource
        headers += ["vms", "cpu used", "cpu reserved", "ram used", "ram reserved", "disk used",
                    "disk reserved", "saturation"]
    rows = []
    for doc in documents:
        row = [doc["name"], state(doc["status"])]
        if v >= 1:
            row += [doc["url"], doc["weight"]]
        if v >= 2 and not all_:
            info = results_info.get(doc["name"])
            row += [info.vms.total, info.cpu.total, human_size(info.ram.total),
                    human_size(info.disk.total)] if info else ["-", "-", "-", "-"]
        if all_:
            if doc["status"] in ("online", "cordoned"):
                cpu, ram, disk = doc["cpu"], doc["ram"], doc["disk"]
                row += [
                    doc["vms"].total,
                    f"{cpu.used:g}/{cpu.total:g} " + bar(cpu.usage_pct),
                    f"{cpu.reserved:g}/{cpu.total:g} " + bar(cpu.reserved_pct, scale=cpu.limit_pct,
                                                            good=200, warn=250),
                    bar(ram.used_pct),
                    _size_pair(ram.reserved, ram.total) + " " + bar(ram.reserved_pct, scale=ram.limit_pct),
                    bar(disk.used_pct),
                    _size_pair(disk.reserved, disk.total) + " " + bar(disk.reserved_pct, scale=disk.limit_pct),
                    f"{doc['saturation']:.2f}" + (" (full)" if doc["saturated"] else ""),
                ]
            else:
                row += ["-"] * 8
        rows.append(row)
    # on a narrow terminal: the url, then what is used, go first (--wide keeps them)
    click.echo(table(headers, rows, optional=["url", "weight", "disk used", "ram used", "cpu used"],
                     short={"cpu reserved": "cpu rsv", "ram reserved": "ram rsv",
                            "disk reserved": "disk rsv", "saturation": "sat"}))
    for doc in documents:
        if doc["status"] != "online" and v >= 1:
            click.echo(f"{doc['name']}: {doc['reason']}", err=True)
    if v < 1 and any(d["status"] != "online" for d in documents):
        click.echo("Some nodes are not online; -v says why.", err=True)


def _size_pair(used: float, total: float) -> str:
    """``4G/24G``: sizes in a table, short."""
    from ..units import human_size

    return f"{human_size(used, short=True)}/{human_size(total, short=True)}"


@declared("node", "reload")
@click.option("--node", "node_name", metavar="NAME", shell_complete=node_names,
              help="Only this node.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def node_reload(settings: Settings, node_name: str | None, as_json: bool) -> None:
    from ..client import fan_out
    from ..errors import UsageError

    results = fan_out(settings.clients(node_name), lambda client: client.reload())
    documents = []
    for client, answer, error in results:
        if error is None:
            documents.append({"name": client.name, "reloaded": True, **answer.to_json()})
        else:
            documents.append({"name": client.name, "reloaded": False, "error": error.message})
    if as_json:
        emit_json(documents)
    else:
        for (client, answer, error), doc in zip(results, documents):
            if error is None:
                settings.say(f"{client.name}: reloaded {answer.path or 'the defaults'} "
                             f"(templates: {', '.join(answer.templates) or 'none'})")
                for message in answer.warnings:
                    click.echo(f"{client.name}: Warning: {message}", err=True)
            else:
                click.echo(f"Error: {about(client.name, error.message)}", err=True)
    errors = [error for _, _, error in results if error is not None]
    if errors:
        raise click.exceptions.Exit(2 if all(isinstance(e, UsageError) for e in errors) else 1)


@node.command("ping")
@click.option("--node", "node_name", metavar="NAME", shell_complete=node_names,
              help="Only this node.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def node_ping(settings: Settings, node_name: str | None, as_json: bool) -> None:
    """Check that nodes answer; exit 1 if any does not."""
    from ..client import fan_out

    def timed(client):
        start = time.perf_counter()
        answer = client.ping()
        return answer, (time.perf_counter() - start) * 1000

    results = fan_out(settings.clients(node_name), timed)
    documents = []
    for client, answer, error in results:
        if error is None:
            pong, ms = answer
            documents.append({"name": client.name, "status": "online", "ms": round(ms, 2),
                              "version": pong.version})
        else:
            documents.append({"name": client.name, "status": getattr(error, "status", "offline"),
                              "reason": error.message})
    if as_json:
        emit_json(documents)
    else:
        for doc in documents:
            if doc["status"] == "online":
                click.echo(f"{doc['name']}: pong in {doc['ms']:.1f} ms (virshle {doc['version']})")
            else:
                click.echo(f"{doc['name']}: {doc['status']}: {doc['reason']}", err=True)
    if any(d["status"] != "online" for d in documents):
        raise click.exceptions.Exit(1)


from .moves import node_cordon, node_drain, node_uncordon  # noqa: E402

for _command in (node_init, node_gc, node_reload, node_cordon, node_uncordon, node_drain):
    node.add_command(_command)  # the node's declared verbs with commands of their own, and drain
