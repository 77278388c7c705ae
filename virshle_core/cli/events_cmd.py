"""``virshle events``: what happens on the nodes, live."""

from __future__ import annotations

import json
import queue
import threading
import time

import click

from ..wire import api
from ..client import http
from ..errors import VirshleError
from .app import Settings, verbosity_options



class Notice(str):
    """A message about a stream (lost, back) rather than an event."""


@click.command()
@click.option("--node", "node_name", metavar="NAME", help="Only this node's events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line (NDJSON).")
@verbosity_options
@click.pass_obj
def events(settings: Settings, node_name: str | None, as_json: bool) -> None:
    """Print node events as they happen (vm-created, vm-started...) until Ctrl-C.

    A node that cannot be reached at first is reported and skipped; a stream
    that ends later (the daemon restarted) reconnects by itself.
    """
    clients = settings.clients(node_name)
    lines: queue.Queue = queue.Queue()

    def follow(client) -> None:
        """Stream one node's events; once connected, reconnect when the daemon restarts."""
        connected_once = False
        while True:
            try:
                response = client.events()
                if connected_once:
                    lines.put((client.name, None, Notice("reconnected")))
                connected_once = True
                for line in response.iter_lines():
                    lines.put((client.name, line, None))
            except VirshleError as exc:
                if not connected_once:  # never reached: report it, the other nodes go on
                    lines.put((client.name, None, exc))
                    return
            except (OSError, http.HttpError):
                pass
            if connected_once:
                lines.put((client.name, None, Notice("the event stream ended (daemon stopped?); "
                                                     "reconnecting ...")))
                time.sleep(1.0)
                while True:  # wait quietly until the daemon is back
                    try:
                        client.ping()
                        break
                    except VirshleError:
                        time.sleep(1.0)

    for client in clients:
        threading.Thread(target=follow, args=(client,), daemon=True).start()
    open_streams = len(clients)
    failed = False
    while open_streams:
        name, line, error = lines.get()
        if isinstance(error, Notice):
            click.echo(f"node {name}: {error}", err=True)
            continue
        if error is not None:
            open_streams -= 1
            failed = True
            click.echo(f"node {name}: {error.message}", err=True)
            continue
        document = json.loads(line)
        event = api.read_event(document)
        if isinstance(event, api.Hello):
            continue
        if as_json:
            click.echo(json.dumps(document))  # as the node sent it, fields this CLI lacks too
        else:
            vm = getattr(event, "vm", None)
            detail = f" {vm.name} (id {vm.id})" if vm else ""
            extra = {k: v for k, v in event.to_json().items() if k not in ("event", "node", "vm")}
            tail = " " + " ".join(f"{k}={v}" for k, v in extra.items()) if extra else ""
            click.echo(f"{time.strftime('%H:%M:%S')} {event.node} {event.event}{detail}{tail}")
    if failed:
        raise click.exceptions.Exit(1)
