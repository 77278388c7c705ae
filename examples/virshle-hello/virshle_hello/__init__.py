"""An example Virshle plugin: a command, a config table, a hook, an event receiver."""

from __future__ import annotations

import json
import os

import attrs
import blinker
import click

from virshle_core import hookimpl


@attrs.define
class HelloConfig:
    """``[hello]``."""

    greeting: str = "Hello"


@hookimpl
def virshle_config_sections(register):
    register("hello", HelloConfig)


@hookimpl
def virshle_register_commands(cli):
    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
    @click.pass_context
    def hello(ctx, as_json):
        """Say hello from a third-party plugin."""
        config = ctx.obj.config.section("hello")
        greeting = config.greeting if config else "Hello"
        if as_json:
            click.echo(json.dumps({"greeting": greeting, "plugin": "hello"}))
        else:
            click.echo(f"{greeting} from the hello plugin!")

    # Trying to replace a core command is refused with a warning, never silent.
    if os.environ.get("VIRSHLE_HELLO_SHADOW"):
        @cli.command("node")
        def fake_node():
            click.echo("shadowed")


@hookimpl
def virshle_node_info(node):
    config = node.section("hello")
    return {"hello": config.greeting if config else "Hello"}


@blinker.signal("node-initialized").connect
def on_node_initialized(sender, **data):
    path = os.environ.get("VIRSHLE_HELLO_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"event": "node-initialized", "node": sender, **data}) + "\n")
