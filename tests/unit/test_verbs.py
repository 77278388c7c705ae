"""Each verb is declared once (issue 21): its route, OpenAPI entry, NodeClient method, both
command lines, its bulk form and its docs/api.md row all come from the declaration, and
none of them can miss one."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from virshle_core.verbs import core

ROOT = Path(__file__).resolve().parents[2]
VERBS = core()


def _command(verb):
    from virshle_core.cli import make_cli

    command = make_cli(with_plugins=False).get_command(click.Context(click.Group()), verb.group)
    for word in verb.words:
        command = command.get_command(click.Context(command), word)
        assert command is not None, f"no command {verb.group} {verb.name}"
    return command


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: f"{v.group} {v.name}")
def test_every_verb_is_everywhere(verb):
    from virshle_core.client import NodeClient
    from virshle_core.config import parse_config
    from virshle_core.daemon.node import Node
    from virshle_core.daemon.routes import Api

    routes = {(r.method, r.path) for r in Api(Node(parse_config("", path=None))).routes}
    assert (verb.method, verb.path) in routes
    assert callable(getattr(NodeClient, verb.attribute))
    command = _command(verb)
    assert verb.summary.split(":")[0].split(".")[0] in (command.help or "")
    assert f"`{verb.method} /api/v1{verb.path}`" in (ROOT / "docs" / "api.md").read_text()


@pytest.mark.parametrize("verb", [v for v in VERBS if v.bulk], ids=lambda v: v.name)
def test_a_bulk_verb_is_on_both_command_lines_with_the_same_options(verb):
    """The fast path answers it (its tables come from the declaration), and the full
    command line takes the same options."""
    from virshle_core.cli import fast

    bulk = fast.bulk_verbs()
    assert verb.name in bulk
    for words in (["a-vm"], ["a-vm", "another"], ["--all"], ["--state", "running"]):
        extra = [name for option in verb.options for name in option.names[-1:] if option.flag]
        parsed = fast._parse(["vm", *verb.words, *words, *extra, "--json"], bulk)
        assert parsed is not None, words
    names = {name for param in _command(verb).params for name in param.opts}
    flags, values = fast._options(verb)
    assert flags - {"--json"} <= names | {"-y", "--yes"} and values <= names | {"--state"}
