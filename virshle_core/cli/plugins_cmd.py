"""``virshle plugins ls``."""

from __future__ import annotations

import click

from .app import VirshleGroup, verbosity_options
from .render import emit_json, style, table



@click.group(cls=VirshleGroup)
@verbosity_options
def plugins() -> None:
    """Installed plugins (entry points in the group 'virshle')."""


@plugins.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@verbosity_options
def plugins_ls(as_json: bool) -> None:
    """List the loaded plugins and the hooks each implements."""
    from ..hooks import broken_plugins, plugin_infos

    infos = plugin_infos()
    broken = broken_plugins()
    if as_json:
        emit_json([
            *({**info.to_json(), "status": "loaded"} for info in infos),
            *({"name": b.name, "distribution": b.distribution, "version": "", "module": "",
               "hooks": [], "core": False, "status": "broken", "error": b.error} for b in broken),
        ])
        return
    rows = [[i.name, i.distribution, i.version,
             ", ".join(h.removeprefix("virshle_") for h in i.hooks) or "-"] for i in infos]
    rows += [[b.name, b.distribution, "", style(f"broken: {b.error}", fg="red")] for b in broken]
    click.echo(table(["name", "distribution", "version", "hooks"], rows))
