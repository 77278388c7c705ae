"""The ``virshle`` (and ``v``) command line, in click.

The group is built by ``make_cli()``: core commands first, then the
plugins' through ``virshle_register_commands`` (and their verbs: ``verbs_cmd``). Heavy
modules (the daemon, asyncssh, sqlite-utils) are imported inside the commands that need
them.
``virshle_core.cli.main`` runs the fast path first (``cli/fast.py``) and
imports this module only when that path declines.
"""

from __future__ import annotations

from typing import Any, Callable

import click


CORE_COMMANDS = (
    ("node", "node", "node"),
    ("template", "template", "template"),
    ("vm", "vm", "vm"),
    ("plugins", "plugins_cmd", "plugins"),
    ("events", "events_cmd", "events"),
    ("completion", "completion", "completion"),
)
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Settings:
    """What every command shares: verbosity, the configuration, the node clients.

    The configuration is read and validated the first time a command needs
    it. A command that only needs the nodes (listings, start, stop, rm...)
    takes them from the view the last validation of the same unchanged file
    left (``cli/view.py``), and so never pays for attrs, cattrs and pluggy.
    """

    def __init__(self, verbosity: int = 0, config_path: str | None = None):
        self.verbosity = verbosity
        self.config_path = config_path
        self._config: Any = None
        self._view: Any = False  # not looked up yet
        self._entries: list | None = None
        self.selector: dict[str, str] = {}  # --selector: only the nodes with these labels

    @property
    def config(self):
        if self._config is None:
            from ..config import load_config
            from ..hooks import config_sections, hypervisor_names

            self._config = load_config(self.config_path, config_sections(), hypervisor_names())
            from . import view

            view.store(view.chosen_path(self.config_path)[0], self._config)  # for the fast path
            self._view = None
            if self.verbosity >= 1:
                self._warn_disks({"disks": view.disks_of(self._config)})
        return self._config

    @property
    def view(self) -> dict | None:
        """The view of the unchanged, already validated configuration, if there is one."""
        if self._view is False:
            from . import view

            self._view = view.load(view.chosen_path(self.config_path)[0])
            if self._view is not None and self.verbosity >= 1:
                self._warn_disks(self._view)
        return self._view

    def check(self) -> None:
        """Validate the configuration, unless this very file has validated before."""
        if self.view is None:
            self.config  # noqa: B018

    @staticmethod
    def _warn_disks(view: dict) -> None:
        import os

        from .render import warn

        for disk, message in view["disks"]:
            if not os.path.isfile(disk):
                warn(message)

    def say(self, message: str, err: bool = False) -> None:
        """A line for people (``Created VM …``); ``-q`` silences it."""
        if self.verbosity >= 0:
            from .render import echo

            echo(message, err=err)

    def warn_config(self) -> None:
        """Print the configuration's warnings (commands that use templates call this)."""
        if not 0 <= self.verbosity < 1:
            return  # -v printed them already; -q prints none
        if self._config is None and self.view is not None:
            self._warn_disks(self.view)
            return
        from . import view

        self._warn_disks({"disks": view.disks_of(self.config)})

    def entries(self) -> list:
        """The managed nodes: name, url, weight and timeout of each; with a catalogue
        (``virshle_discover_nodes``), its nodes too, asked once per command; with
        ``--selector``, those with its labels."""
        entries = self._all_entries()
        if not self.selector:
            return entries
        chosen = [e for e in entries if all(getattr(e, "labels", {}).get(key) == value
                                            for key, value in self.selector.items())]
        if not chosen:
            wanted = ", ".join(f"{k}={v}" for k, v in self.selector.items())
            raise click.UsageError(f"no managed node has the labels {wanted} (of "
                                   f"{len(entries)} nodes)")
        return chosen

    def _all_entries(self) -> list:
        if self._config is None and self.view is not None and not self.view.get("discovery"):
            from .fast import _Node

            return [_Node(**entry) for entry in self.view["nodes"]]
        if self._entries is None:
            from ..hooks import plugins

            discovered = plugins().discover_nodes(config=self.config)
            self._entries = (self.config.managed_nodes() if discovered is None
                             else merge_nodes(self.config, discovered))
        return self._entries

    def clients(self, node: str | None = None, param: str = "--node") -> list:
        """Clients of the managed nodes, or of ``node`` alone (an unknown name is exit 2,
        naming ``param``, the option or argument that gave it)."""
        from ..client import NodeClient

        entries = self.entries()
        if node is not None:
            chosen = [e for e in entries if e.name == node]
            if not chosen:
                raise click.BadParameter(
                    f"no node named {node!r}; known nodes: {', '.join(e.name for e in entries)}",
                    param_hint=param,
                )
            entries = chosen
        return [NodeClient(e) for e in entries]


def _labels(selectors: tuple[str, ...]) -> dict[str, str]:
    """``--selector rack=a``, each as a label and its value (a comma also separates)."""
    labels = {}
    for given in (part for selector in selectors for part in selector.split(",") if part):
        key, sep, value = given.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{given!r} is not KEY=VALUE", param_hint="--selector")
        labels[key.strip()] = value.strip()
    return labels


def merge_nodes(config, discovered: list) -> list:
    """The ``[[node]]`` entries, then the discovered nodes that are not one of them (by
    name or URL): a static entry says how this command line reaches a node. Without
    ``[[node]]``, the local node is one when its daemon runs here (a node's own config
    registers it in the catalogue), and its own entry in the catalogue is left out."""
    import os

    static, here = list(config.nodes), None
    if not static and os.path.exists(config.host.socket_path):
        from ..marks import NODE_ID

        static = config.managed_nodes()
        try:
            here = (config.host.root_path / NODE_ID).read_text().strip() or None
        except OSError:
            here = None
    names, urls = {e.name for e in static}, {e.url for e in static}
    return static + [n for n in discovered
                     if n.name not in names and n.url not in urls and (here is None or n.id != here)]


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


def _set_wide(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        from . import render

        render.WIDE = True


def verbosity_options(func: Callable) -> Callable:
    """Accept ``-v``/``-q`` (and ``--wide``) after a subcommand too (``virshle node serve -vvv``)."""
    func = click.option("--wide", is_flag=True, expose_value=False, callback=_set_wide,
                        help="Show every table column, whatever the terminal's width.")(func)
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


def make_cli(with_plugins: bool = True) -> click.Group:
    """Build the command line: core commands, then (``with_plugins``) plugin commands."""

    @click.group(cls=VirshleGroup, context_settings=CONTEXT_SETTINGS, lazy={
        name: f"virshle_core.cli.{module}:{attr}" for name, module, attr in CORE_COMMANDS})
    @click.option("-v", "--verbose", count=True,
                  help="More detail: repeat up to -vvvv (also more table columns).")
    @click.option("-q", "--quiet", is_flag=True, help="Only print errors.")
    @click.option("--config", "config_path", metavar="PATH", envvar="VIRSHLE_CONFIG",
                  help="Configuration file [env VIRSHLE_CONFIG; default /etc/virshle/config.toml].")
    @click.option("-l", "--selector", "selectors", metavar="KEY=VALUE", multiple=True,
                  envvar="VIRSHLE_SELECTOR",
                  help="Only the nodes with this label ([[node]] labels, or a catalogue's); "
                       "repeatable.")
    @click.version_option(package_name=None, version=_version(), prog_name="virshle")
    @click.pass_context
    def cli(ctx: click.Context, verbose: int, quiet: bool, config_path: str | None,
            selectors: tuple[str, ...]) -> None:
        """Manage virtual machines on one or many nodes.

        Start a node with `virshle node init --all` and `virshle node serve`,
        then create VMs from templates: `virshle vm create -t xs`.
        """
        from .. import log

        settings = Settings(verbosity=-1 if quiet else verbose, config_path=config_path)
        settings.selector = _labels(selectors)
        log.configure(settings.verbosity)
        ctx.obj = settings
        # The whole configuration is checked before any command runs (once per version of it).
        if ctx.invoked_subcommand is not None:
            settings.check()

    cli.sealed = True
    if not with_plugins:
        return cli

    from ..hooks import plugins

    try:
        plugins().register_commands(cli=cli)
    except Exception as exc:
        from .render import warn

        warn(f"a plugin failed to register its commands: {type(exc).__name__}: {exc}")
    return cli


def _version() -> str:
    from .. import __version__

    return __version__


def core_command(args: list[str]) -> bool:
    """Whether ``args`` run a core command (and ask for no help): the plugins' commands need
    not be loaded to run it."""
    words = iter(args)
    for word in words:
        if word in ("-h", "--help", "--version"):
            return False
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word in {name for name, _, _ in CORE_COMMANDS} and not (
                {"-h", "--help"} & set(args))
    return False
