"""The fast path of the commands typed most: ``vm ls`` and ``node ls``, without click.

A Python command line pays for every module it imports before it does
anything; click alone costs more than the whole budget of a listing. These
two commands, in their plain forms, are answered here instead: from the view
of the configuration that the full command line validated and left in its
cache (``cli/view.py``), over the nodes' unix sockets, printed by the same
code the full commands use (``cli/listing.py``). Anything else, an option
this path does not know, a stale or missing view, an SSH node, returns None
and the full command line runs, which also gives help and errors.
"""

from __future__ import annotations

import os

STATES = ("created", "running", "paused", "shutdown", "crashed")


class _Node:
    """A managed node as the view holds it (what NodeClient reads of a [[node]] entry)."""

    def __init__(self, name: str, url: str, weight: int, timeout: float):
        self.name, self.url, self.weight, self.timeout = name, url, weight, timeout


class _Settings:
    def __init__(self, verbosity: int, nodes: list[_Node]):
        self.verbosity = verbosity
        self.nodes = nodes

    def clients(self, node_name: str | None) -> list:
        from ..client import NodeClient

        return [NodeClient(n) for n in self.nodes if node_name is None or n.name == node_name]


def _parse(argv: list[str]) -> dict | None:
    """``[-v…|-q] [--config PATH] (vm ls | node ls) [options]``, or None for anything else."""
    options = {"verbosity": 0, "config": None, "node": None, "state": None, "json": False}
    words = iter(argv)
    command: list[str] = []
    for word in words:
        if word.startswith("--config"):
            if command:
                return None  # after the subcommand, the full command line says what it makes of it
            value = word.partition("=")[2] if "=" in word else next(words, None)
            if not value:
                return None
            options["config"] = value
        elif word == "-q" or word == "--quiet":
            options["verbosity"] = -1
        elif word == "--verbose" or (word.startswith("-v") and set(word[1:]) == {"v"}):
            if options["verbosity"] >= 0:
                options["verbosity"] += 1 if word == "--verbose" else len(word) - 1
        elif not word.startswith("-") and len(command) < 2:
            command.append(word)
        elif command and word == "--json":
            options["json"] = True
        elif command and word.split("=")[0] in ("--node", "--state"):
            key = word.split("=")[0][2:]
            value = word.partition("=")[2] if "=" in word else next(words, None)
            if not value or value.startswith("-"):
                return None
            options[key] = value
        else:
            return None
    if command not in (["vm", "ls"], ["node", "ls"]):
        return None
    if options["state"] is not None and (command[0] != "vm" or options["state"] not in STATES):
        return None
    options["command"] = command[0]
    return options


def run(argv: list[str]) -> int | None:
    """Answer ``argv`` here and return the exit status, or None to take the full path."""
    if os.environ.get("VIRSHLE_NO_FAST"):
        return None
    options = _parse(argv)
    if options is None:
        return None
    from .view import chosen_path, load

    path, chosen = chosen_path(options["config"])
    view = load(path)
    if view is None:
        return None
    nodes = [_Node(**entry) for entry in view["nodes"]]
    if any(not n.url.startswith("unix://") for n in nodes):
        return None  # SSH nodes: asyncssh is the cost anyway
    if options["node"] is not None and options["node"] not in {n.name for n in nodes}:
        return None  # the full command line names the known nodes
    settings = _Settings(options["verbosity"], nodes)
    if options["verbosity"] >= 1:
        from .render import warn

        for disk, message in view["disks"]:
            if not os.path.isfile(disk):
                warn(message)
    from . import listing

    if options["command"] == "vm":
        return listing.list_vms(settings, options["node"], options["state"], options["json"])
    if options["verbosity"] >= 2:
        return None  # -vv adds the nodes' sizes: the full command asks their info
    return listing.list_nodes(settings, options["node"], options["json"])



