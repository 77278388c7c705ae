"""The ``virshle`` (and ``v``) command line, in click.

The group is built by ``make_cli()``: core commands first, then the
plugins' through ``virshle_register_commands``. Heavy modules (the daemon,
aiohttp, sqlite-utils) are imported inside the commands that need them.
``virshle_core.cli.main`` runs the fast path first (``cli/fast.py``) and
imports this module only when that path declines.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import click


CORE_COMMANDS = (
    ("node", "node", "node"),
    ("template", "template", "template"),
    ("vm", "vm", "vm"),
    ("plugins", "plugins_cmd", "plugins"),
    ("events", "events_cmd", "events"),
)
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@attrs.define
class Settings:
    """What every command shares: verbosity, the configuration, the node clients."""

    verbosity: int = 0
    config_path: str | None = None
    _config: Any = None

    @property
    def config(self):
        if self._config is None:
            from ..config import load_config, warn
            from ..plugins import config_sections, hypervisor_names

            self._config = load_config(self.config_path, config_sections(), hypervisor_names())
            from . import view

            view.store(view.chosen_path(self.config_path)[0], self._config)  # for the fast path
            if self.verbosity >= 1:
                warn(self._config)
        return self._config

    def say(self, message: str, err: bool = False) -> None:
        """A line for people (``Created VM …``); ``-q`` silences it."""
        if self.verbosity >= 0:
            click.echo(message, err=err)

    def warn_config(self) -> None:
        """Print the configuration's warnings (commands that use templates call this)."""
        from ..config import warn

        if 0 <= self.verbosity < 1:
            warn(self.config)

    def clients(self, node: str | None = None) -> list:
        """Clients of the managed nodes, or of ``node`` alone (an unknown name is exit 2)."""
        from ..client import NodeClient

        entries = self.config.managed_nodes()
        if node is not None:
            chosen = [e for e in entries if e.name == node]
            if not chosen:
                raise click.BadParameter(
                    f"no node named {node!r}; known nodes: {', '.join(e.name for e in entries)}",
                    param_hint="--node",
                )
            entries = chosen
        return [NodeClient(e) for e in entries]


def _add_verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if not value:
        return
    settings = ctx.find_object(Settings)
    if settings is None:
        return
    from .. import log

    settings.verbosity += value if param.name == "verbose" else 0
    if param.name == "quiet":
        settings.verbosity = -1
    log.configure(settings.verbosity)


def verbosity_options(func: Callable) -> Callable:
    """Accept ``-v``/``-q`` after a subcommand too (``virshle node serve -vvv``)."""
    func = click.option("-q", "--quiet", is_flag=True, expose_value=False, is_eager=False,
                        callback=_add_verbosity, help="Only print errors.")(func)
    func = click.option("-v", "--verbose", count=True, expose_value=False,
                        callback=_add_verbosity,
                        help="More detail: repeat up to -vvvv (also more table columns).")(func)
    return func


class VirshleGroup(click.Group):
    """A group whose core commands plugins cannot silently replace.

    Core commands may be *lazy*: ``lazy={"vm": "virshle_core.cli.vm:vm"}``
    imports that module only when the command runs (or help lists it), so
    ``virshle node ls`` does not pay for ``vm``'s imports.
    """

    sealed: bool = False

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module, _, attr = self.lazy.pop(name).partition(":")
            command = getattr(importlib.import_module(module), attr)
            if isinstance(command, VirshleGroup):
                command.sealed = True
            self.commands[name] = command
        return super().get_command(ctx, name)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if self.sealed and (name in self.commands or name in self.lazy):
            from .render import warn

            warn(f"a plugin tried to replace the command {name!r}; the core command is kept")
            return
        super().add_command(cmd, name)

    def group(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", VirshleGroup)
        return super().group(*args, **kwargs)


def make_cli() -> click.Group:
    """Build the command line: core commands, then plugin commands."""

    @click.group(cls=VirshleGroup, context_settings=CONTEXT_SETTINGS, lazy={
        name: f"virshle_core.cli.{module}:{attr}" for name, module, attr in CORE_COMMANDS})
    @click.option("-v", "--verbose", count=True,
                  help="More detail: repeat up to -vvvv (also more table columns).")
    @click.option("-q", "--quiet", is_flag=True, help="Only print errors.")
    @click.option("--config", "config_path", metavar="PATH", envvar="VIRSHLE_CONFIG",
                  help="Configuration file [env VIRSHLE_CONFIG; default /etc/virshle/config.toml].")
    @click.version_option(package_name=None, version=_version(), prog_name="virshle")
    @click.pass_context
    def cli(ctx: click.Context, verbose: int, quiet: bool, config_path: str | None) -> None:
        """Manage virtual machines on one or many nodes.

        Start a node with `virshle node init --all` and `virshle node serve`,
        then create VMs from templates: `virshle vm create -t xs`.
        """
        from .. import log

        settings = Settings(verbosity=-1 if quiet else verbose, config_path=config_path)
        log.configure(settings.verbosity)
        ctx.obj = settings
        # The whole configuration is checked before any command runs.
        if ctx.invoked_subcommand is not None:
            settings.config  # noqa: B018

    cli.sealed = True

    from ..plugins import hook

    try:
        hook().virshle_register_commands(cli=cli)
    except Exception as exc:
        from .render import warn

        warn(f"a plugin failed to register its commands: {type(exc).__name__}: {exc}")
    return cli


def _version() -> str:
    from .. import __version__

    return __version__
