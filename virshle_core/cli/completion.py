"""``virshle completion bash|zsh|fish``, and what the shells complete from the nodes.

The scripts are click's own; they call ``virshle`` back with ``_VIRSHLE_COMPLETE`` set
(``_V_COMPLETE`` for ``v``). VM, node and template names come from the configuration
and the daemons, each node asked with a short timeout, so that a dead node never holds
the shell: a completion that cannot ask simply offers nothing.
"""

from __future__ import annotations

from typing import Any

import click

from .app import Settings

TIMEOUT = 1.0
"""Seconds one node may take to answer a completion."""

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.option("--prog", default="virshle", show_default=True, type=click.Choice(["virshle", "v"]),
              help="The command name to complete.")
def completion(shell: str, prog: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(virshle completion bash)"         (in ~/.bashrc)
    zsh:   eval "$(virshle completion zsh)"          (in ~/.zshrc)
    fish:  virshle completion fish > ~/.config/fish/completions/virshle.fish

    It completes commands and options, and VM, node and template names
    asked of the nodes (each with a 1 s timeout).
    """
    from click.shell_completion import get_completion_class

    from .app import make_cli

    cls = get_completion_class(shell)
    script = cls(make_cli(), {}, prog, f"_{prog.upper()}_COMPLETE").source()
    click.echo(script)


def _settings(ctx: click.Context) -> Settings:
    """The command line's settings while completing: its group callbacks have not run."""
    root = ctx.find_root()
    return Settings(verbosity=-1, config_path=root.params.get("config_path"))


def _ask(ctx: click.Context, work) -> list:
    from ..client import fan_out

    try:
        clients = _settings(ctx).clients(ctx.params.get("node_name"))
    except Exception:  # a broken config, an unknown node: nothing to offer
        return []
    for client in clients:
        client.timeout = TIMEOUT
    answers = []
    for _, answer, error in fan_out(clients, work):
        if error is None:
            answers.extend(answer)
    return answers


def vm_names(ctx: click.Context, param: Any, incomplete: str) -> list[str]:
    names = {vm.name for vm in _ask(ctx, lambda client: client.vms())}
    return sorted(name for name in names if name.startswith(incomplete))


def template_names(ctx: click.Context, param: Any, incomplete: str) -> list[str]:
    names = {template.name for template in _ask(ctx, lambda client: client.templates())}
    return sorted(name for name in names if name.startswith(incomplete))


def node_names(ctx: click.Context, param: Any, incomplete: str) -> list[str]:
    try:
        names = [entry.name for entry in _settings(ctx).entries()]
    except Exception:
        return []
    return [name for name in names if name.startswith(incomplete)]
