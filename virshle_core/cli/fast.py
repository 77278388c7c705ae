"""The fast path of the commands typed most, without click: ``vm ls``, ``node ls``,
``vm create|info`` in their plain forms, and every verb declared ``bulk`` (``vm
stop|rm|pause|resume|reboot``, a plugin's: of one name, several, ``--state`` or
``--all``), from its declaration.

A Python command line pays for every module it imports before it does
anything; click alone costs more than the whole budget of a listing. These
commands are answered here instead: from the view of the configuration that
the full command line validated and left in its cache (``cli/view.py``), over
the nodes' unix sockets, by the same code the full commands run
(``cli/listing.py``, ``cli/actions.py``). Anything else, an option this path
does not know, a stale or missing view, an SSH node, several nodes to choose
from, returns None and the full command line runs, which also gives help and
usage errors.
"""

from __future__ import annotations

import os

from ..wire.api import STATES


class _Node:
    """A managed node as the view holds it (what NodeClient reads of a [[node]] entry)."""

    def __init__(self, name: str, url: str, weight: int, timeout: float, persist: float = 0,
                 labels: dict | None = None):
        self.name, self.url, self.weight, self.timeout = name, url, weight, timeout
        self.persist, self.labels = persist, labels or {}


class _Settings:
    def __init__(self, verbosity: int, nodes: list[_Node], disks: list):
        self.verbosity = verbosity
        self.nodes = nodes
        self.disks = disks

    def clients(self, node_name: str | None) -> list:
        from ..client import NodeClient

        return [NodeClient(n) for n in self.nodes if node_name is None or n.name == node_name]

    def say(self, message: str, err: bool = False) -> None:
        if self.verbosity >= 0:
            from .render import echo

            echo(message, err=err)

    def warn_config(self) -> None:
        if self.verbosity == 0:  # -v printed them already; -q prints none
            _warn_disks(self.disks)


def _warn_disks(disks: list) -> None:
    from .render import warn

    for disk, message in disks:
        if not os.path.isfile(disk):
            warn(message)


# the options of the commands this path answers: flags, and options taking a value; the
# bulk verbs' come from their declarations (``virshle_core.verbs``: the core's, and the
# plugins' the view keeps)
REFS = {"--id", "--name", "--uuid"}  # each may be given several times, by the bulk verbs
FLAGS = {"ls": {"--json", "--wide", "--strict"}, "create": {"--json"}, "info": {"--json", "--refresh"}}
VALUES = {"ls": {"--node", "--state"}, "create": {"--node", "--name", "-t", "--template", "-n", "--count"},
          "info": {"--node", *REFS}}


def bulk_verbs(view: dict | None = None) -> dict:
    """The verbs this path answers on many VMs, by name: the core's and the plugins'."""
    from ..verbs import Verb, core

    verbs = {v.name: v for v in core() if v.bulk and v.group == "vm"}
    for data in (view or {}).get("verbs", ()):
        verb = Verb.from_json(data)
        if verb.bulk and verb.group == "vm":
            verbs.setdefault(verb.name, verb)
    return verbs


def _options(verb) -> tuple[set, set]:
    """A bulk verb's flags and valued options, as its command takes them."""
    flags = {"--json", "--all"} | {name for o in verb.options if o.flag for name in o.names}
    if verb.method == "DELETE":
        flags |= {"-y", "--yes"}
    values = {"--node", "--state", *REFS} | {n for o in verb.options if not o.flag for n in o.names}
    return flags, values


def _parse(argv: list[str], bulk: dict) -> dict | None:
    """``[-v…|-q] [--config PATH] GROUP VERB [options]``, or None for anything else."""
    options: dict = {"verbosity": 0, "config": None, "flags": set(), "values": {}, "refs": []}
    words = iter(argv)
    command: list[str] = []
    for word in words:
        name, equals, inline = word.partition("=")
        if word == "-q" or word == "--quiet":
            options["verbosity"] = -1
        elif word == "--verbose" or (word.startswith("-v") and set(word[1:]) == {"v"}):
            if options["verbosity"] >= 0:
                options["verbosity"] += 1 if word == "--verbose" else len(word) - 1
        elif name == "--config" and not command:
            options["config"] = inline if equals else next(words, None)
            if not options["config"]:
                return None
        elif not word.startswith("-") and len(command) < 2:
            command.append(word)
        elif not word.startswith("-") and command[0] == "vm" and command[1] in bulk:
            options["refs"].append(("name", word))  # `vm stop web-1 web-2`
        elif not word.startswith("-") and command == ["vm", "info"] \
                and "--name" not in options["values"]:
            options["values"]["--name"] = word  # `vm info web-1`
        elif len(command) == 2 and word in _flags(command, bulk):
            options["flags"].add(word)
        elif len(command) == 2 and name in _values(command, bulk):
            value = inline if equals else next(words, None)
            if value is None or (value.startswith("-") and not equals):
                return None
            if name in REFS and command[1] in bulk:
                options["refs"].append((name[2:], value))
            elif name in options["values"]:
                return None
            else:
                options["values"][name] = value
        else:
            return None
    if len(command) != 2 or (command[0], command[1]) not in {
            ("vm", "ls"), ("node", "ls"), ("vm", "create"), ("vm", "info"),
            *(("vm", verb) for verb in bulk)}:
        return None
    if command[0] == "node" and options["values"].keys() - {"--node"}:
        return None
    options["group"], options["verb"] = command
    return options


def _flags(command: list[str], bulk: dict) -> set:
    if command[0] == "vm" and command[1] in bulk:
        return _options(bulk[command[1]])[0]
    return FLAGS.get(command[1], set())


def _values(command: list[str], bulk: dict) -> set:
    if command[0] == "vm" and command[1] in bulk:
        return _options(bulk[command[1]])[1]
    return VALUES.get(command[1], set())


def run(argv: list[str]) -> int | None:
    """Answer ``argv`` here and return the exit status, or None to take the full path."""
    if os.environ.get("VIRSHLE_NO_FAST") or os.environ.get("VIRSHLE_SELECTOR"):
        return None  # (--selector: the full command line chooses the nodes)
    completing = None
    if "_VIRSHLE_COMPLETE" in os.environ or "_V_COMPLETE" in os.environ:
        from . import fastcomplete  # a shell asks which VMs there are (Tab)

        completing = fastcomplete.request()
        if completing is None:
            return None
        argv = completing[1]
    from .view import chosen_path, load

    path, _ = chosen_path(_config_of(argv))
    view = load(path)
    if view is None or view.get("discovery"):
        return None  # (a catalogue: the full command line asks it)
    bulk = bulk_verbs(view)
    options = _parse(argv, bulk) if completing is None else {}
    if options is None:
        return None
    nodes = [_Node(**entry) for entry in view["nodes"]]
    if not all(n.url.startswith("unix://") or _held(n) for n in nodes):
        return None  # an SSH node nobody holds: asyncssh is the cost anyway
    if completing is not None:
        return _complete(completing, view, nodes)
    values, flags = options["values"], options["flags"]
    node = values.get("--node")
    if node is not None and node not in {n.name for n in nodes}:
        return None  # the full command line names the known nodes
    settings = _Settings(options["verbosity"], nodes, view["disks"])
    if options["verbosity"] >= 1:
        _warn_disks(view["disks"])
    try:
        return _answer(options["group"], options["verb"], settings, values, flags, node,
                       options["refs"], bulk)
    except _Decline:
        return None
    except Exception as exc:
        from ..errors import VirshleError

        if not isinstance(exc, VirshleError):
            raise
        from .render import report_error

        report_error(exc.code, exc.message, exc.hint, exc.node, "--json" in flags)
        return exc.exit_code


def _complete(completing: tuple, view: dict, nodes: list[_Node]) -> int | None:
    """A VM's name (or id, or uuid) under the cursor, from the nodes; None for any other
    word (click completes it)."""
    from ..verbs import Verb, core
    from . import fastcomplete

    shell, args, incomplete = completing
    verbs = list(core()) + [Verb.from_json(data) for data in view.get("verbs", ())]
    naming = {v.name for v in verbs if v.group == "vm" and " " not in v.name
              and v.path.startswith("/vms/{ref}")} | set(fastcomplete.NAMING)
    asked = fastcomplete.wanted(args, incomplete, naming)
    if asked is None:
        return None
    field, node = asked
    if node is not None and node not in {n.name for n in nodes}:
        return None
    settings = _Settings(-1, nodes, [])
    return fastcomplete.answer(shell, field, incomplete, settings.clients(node))


def _held(node: _Node) -> bool:
    """An ``ssh://`` node whose connection a holder keeps (client/sshhold.py)."""
    if not node.url.startswith("ssh://") or node.persist <= 0:
        return False
    from ..client import sshhold

    held = sshhold.socket_path(sshhold.endpoint(node.url))
    return held is not None and held.exists()


class _Decline(Exception):
    """This invocation is the full command line's to answer."""


def _config_of(argv: list[str]) -> str | None:
    """``--config PATH`` (or ``--config=PATH``) before the command's words, if given."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            return next(words, None)
        if word.startswith("--config="):
            return word.partition("=")[2]
        if not word.startswith("-"):
            break
    return None


def _answer(group: str, verb: str, settings: _Settings, values: dict, flags: set,
            node: str | None, refs: list | None = None, bulk: dict | None = None) -> int:
    as_json = "--json" in flags
    if "--wide" in flags:
        from . import render

        render.WIDE = True
    if group == "node":
        if settings.verbosity >= 2 or as_json:
            raise _Decline  # -vv and --json add the nodes' sizes: the full command asks
        from . import listing

        return listing.list_nodes(settings, node, as_json)
    if verb == "ls":
        state = values.get("--state")
        if state is not None and state not in STATES:
            raise _Decline
        from . import listing

        return listing.list_vms(settings, node, state, as_json, "--strict" in flags)
    from . import actions

    if verb in (bulk or {}):
        declared = bulk[verb]
        given = {}
        for option in declared.options:
            if option.flag and flags & set(option.names):
                given[option.field] = True
            elif not option.flag:
                given.update({option.field: values[n] for n in option.names if n in values})
        return _act(declared, settings, values, flags, node, refs or [], given, as_json)
    if verb == "create":
        template = values.get("-t") or values.get("--template")
        count = values.get("-n") or values.get("--count") or "1"
        if not template or not count.isascii() or not count.isdigit() or int(count) < 1 \
                or ("-t" in values and "--template" in values) or ("-n" in values and "--count" in values):
            raise _Decline
        if node is None and len(settings.nodes) != 1:
            raise _Decline  # several nodes: the balancer's plugins choose
        actions.create(settings, template, int(count), values.get("--name"), node, None, as_json)
        return 0
    refs = [(kind, values[f"--{kind}"]) for kind in ("id", "name", "uuid") if f"--{kind}" in values]
    actions.info(settings, _one_ref(refs), node, "--refresh" in flags, as_json)
    return 0


def _one_ref(refs: list):
    """The VM one reference names; a malformed one is the full command line's to word."""
    if len(refs) != 1 or (refs[0][0] == "id" and not (refs[0][1].isascii() and refs[0][1].isdigit())):
        raise _Decline
    from ..wire.refs import VmRef

    try:
        return VmRef.of(*refs[0])
    except Exception:
        raise _Decline from None


def _act(verb, settings: _Settings, values: dict, flags: set, node: str | None, refs: list,
         given: dict, as_json: bool) -> int:
    """A bulk verb, or one VM named once, as ``cli/selection.act`` does it."""
    from . import actions

    state, every = values.get("--state"), "--all" in flags
    if (state is not None and state not in STATES) or not (refs or state or every) \
            or (refs and (state or every)):
        raise _Decline  # the full command line words the usage error
    if len(refs) == 1 and not (state or every):
        actions.one(settings, verb, _one_ref(refs), node, given, as_json)
        return 0
    if verb.method == "DELETE" and (state or every) and not flags & {"-y", "--yes"}:
        raise _Decline  # it asks first: click's prompt
    from . import bulk

    refs = [_one_ref([ref]) for ref in refs]
    return bulk.run(settings, bulk.select(settings, refs, node, state, every, verb), verb, given,
                    as_json)
