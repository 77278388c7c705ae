"""``virshle template ls``."""

from __future__ import annotations

import click

from .app import Settings, VirshleGroup, verbosity_options
from .render import emit_json, report_failures, table



@click.group(cls=VirshleGroup)
@verbosity_options
def template() -> None:
    """VM templates (presets defined as [[template.vm]] in config.toml)."""


@template.command("ls")
@click.option("--node", "node_name", metavar="NAME", help="Only this node's templates.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
@click.pass_obj
def template_ls(settings: Settings, node_name: str | None, as_json: bool) -> None:
    """List the templates each node offers."""
    from ..client import fan_out
    from ..units import human_size

    settings.warn_config()
    merged: dict[str, dict] = {}
    failures = []
    for client, templates, error in fan_out(settings.clients(node_name), lambda c: c.templates()):
        if error is not None:
            failures.append((client.name, error))
            continue
        for item in templates:
            entry = merged.setdefault(item.name, {**item.to_json(), "nodes": []})
            entry["nodes"].append(client.name)
    documents = list(merged.values())
    if as_json:
        emit_json(documents)
    else:
        headers = ["name", "vcpu", "vram", "disks", "nets", "nodes"]
        rows = [
            [t["name"], t["vcpu"], human_size(t["vram"]),
             ", ".join(d["name"] for d in t["disks"]) or "-",
             ", ".join(f"{n['name']} ({n['type']})" for n in t["nets"]) or "-",
             ", ".join(t["nodes"])]
            for t in documents
        ]
        if rows or len(failures) < len(settings.clients(node_name)):  # someone answered
            click.echo(table(headers, rows))
    report_failures(failures)
    if failures:
        raise click.exceptions.Exit(1)
