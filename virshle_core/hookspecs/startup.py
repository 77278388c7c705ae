"""Start-up hooks: called in every process that loads plugins (CLI and daemon)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .marker import hookspec

if TYPE_CHECKING:
    import click


@hookspec
def virshle_config_sections(register: Callable[[str, type], None]) -> None:
    """Declare the plugin's own configuration tables.

    Called before the configuration file is read, in every process that loads
    plugins; all implementations are called. A table registered here is
    validated as strictly as the core's own: unknown keys and wrong types are
    configuration errors with their line. Read it back with
    ``node.section(name)``; a missing table gives the class's defaults.

    :param register: call ``register("dhcp.kea", KeaConfig)`` with the dotted
        table name and an attrs class whose fields all have defaults.
    :returns: nothing.

    Example::

        @hookimpl
        def virshle_config_sections(register):
            register("hello", HelloConfig)
    """


@hookspec
def virshle_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``virshle`` command line.

    Called once, after every core command exists. A command whose name is
    already taken is refused with a warning; it never replaces a core one.
    Import heavy modules inside the command, not at module level: every
    ``virshle`` invocation loads plugins.

    :param cli: the top-level click group; use ``@cli.command()``.
    :returns: nothing.

    Example::

        @hookimpl
        def virshle_register_commands(cli):
            @cli.command()
            @click.pass_obj
            def hello(settings):          # settings.config is the loaded configuration
                click.echo("hello")
    """
