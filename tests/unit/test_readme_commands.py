"""Every ``v``/``virshle`` command the README shows parses: its commands and options
exist, as written (click parses them; nothing runs)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from virshle_core.cli import _normalise
from virshle_core.cli.app import make_cli

README = Path(__file__).resolve().parents[2] / "README.md"


def commands() -> list[str]:
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.splitlines():
            line = re.split(r"\s#", line)[0].strip()
            if re.match(r"(v|virshle) ", line) and not re.search(r"[|<>`$]", line):
                found.append(line)
    return found


def test_the_readme_shows_the_verbs():
    shown = " ".join(commands())
    for verb in ("pause", "resume", "reboot", "snapshot create", "snapshot restore", "clone",
                 "disk resize", "ssh", "set"):
        assert f"vm {verb}" in shown, verb


@pytest.mark.filterwarnings("ignore:'protected_args' is deprecated")
@pytest.mark.parametrize("line", commands())
def test_a_readme_command_parses(line):
    argv = _normalise(shlex.split(line)[1:])
    cli = make_cli()
    ctx = cli.make_context("v", list(argv))
    command: click.Command = cli
    args = [*ctx.protected_args, *ctx.args]
    while isinstance(command, click.Group):
        name, command, args = command.resolve_command(ctx, args)
        ctx = command.make_context(name, list(args), parent=ctx)
        args = [*ctx.protected_args, *ctx.args] if isinstance(command, click.Group) else []


def _leaves(group: click.Group, prefix: str):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield prefix + name, command
            yield from _leaves(command, f"{prefix}{name} ")
        else:
            yield prefix + name, command


def test_every_vm_verb_shows_examples():
    vm = make_cli().get_command(click.Context(click.Group()), "vm")
    missing = [name for name, command in _leaves(vm, "vm ")
               if "Examples:" not in (command.help or "")]
    assert missing == []
