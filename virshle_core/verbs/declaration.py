"""A verb's declaration: ``Verb``, with its ``Option``s and ``Argument``s (plain data)."""

from __future__ import annotations

from ..wire.record import Record  # noqa: F401 -- a plugin's request and reply classes derive from it

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


class Option:
    """An option of a verb's command: ``--force`` (a flag) or ``--to NAME`` (a value), and
    the field of the request body it fills."""

    __slots__ = ("names", "field", "flag", "help", "metavar")

    def __init__(self, *names: str, field: str, flag: bool = False, help: str = "",
                 metavar: str | None = None):
        self.names, self.field, self.flag, self.help = names, field, flag, help
        self.metavar = metavar

    def to_json(self) -> dict:
        return {"names": list(self.names), "field": self.field, "flag": self.flag,
                "help": self.help, "metavar": self.metavar}

    @classmethod
    def from_json(cls, data: dict) -> "Option":
        return cls(*data["names"], field=data["field"], flag=data["flag"], help=data["help"],
                   metavar=data.get("metavar"))


class Argument:
    """A word of a verb's command after the VM (``SNAPSHOT``, ``DISK``): a parameter of its
    route's path (``param``) or a field of its body (``field``)."""

    __slots__ = ("metavar", "param", "field", "help")

    def __init__(self, metavar: str, *, param: str | None = None, field: str | None = None,
                 help: str = ""):
        self.metavar, self.param, self.field, self.help = metavar, param, field, help

    def to_json(self) -> dict:
        return {"metavar": self.metavar, "param": self.param, "field": self.field,
                "help": self.help}

    @classmethod
    def from_json(cls, data: dict) -> "Argument":
        return cls(data["metavar"], param=data["param"], field=data["field"], help=data["help"])


class Verb:
    """One verb on a VM (``group = "vm"``) or on a node (``"node"``).

    - ``name``: the words of its command after the group (``pause``, ``snapshot create``);
    - ``summary``, ``help``, ``examples``: what its command and its route say;
    - ``method``, ``path``: its route under ``/api/v1`` (by default ``POST
      /vms/{ref}/<name>``), ``status`` its success;
    - ``request``, ``reply``: the record classes of its body and its reply (a body made of
      its ``options`` and ``arguments``);
    - ``states``: the states of a VM it acts on (``--all`` takes those, a VM in another is
      refused), ``done``: the states in which it has nothing to do;
    - ``lock``: it holds the VM's lock; ``admits``: it takes room under ``[host.limits]``;
    - ``hook``: the owner hook a plugin implements for it; ``event``: what it announces;
    - ``run``: ``module:function``, the work; ``handler``: a route of its own instead of the
      common one (a stream, say);
    - ``bulk``: it acts on many VMs at once (``NAME...``, ``--state``, ``--all``), ``doing``
      the word its counter says, ``said`` the line said of each VM (a format string over
      ``vm``, ``id``, ``node``, ``verb`` and the reply's fields, or ``module:function``);
    - ``command``: ``module:function``, a click command of its own instead of the common one;
    - ``plugin``: who declared it; ``notes``: what its route's row in docs/api.md adds.
    """

    __slots__ = ("name", "group", "summary", "help", "examples", "method", "path", "status",
                 "request", "reply", "states", "done", "lock", "admits", "hook", "event", "run",
                 "handler", "bulk", "doing", "said", "options", "arguments", "command",
                 "plugin", "query", "notes")

    def __init__(self, name: str, summary: str, *, group: str = "vm", help: str = "",
                 examples: tuple[str, ...] = (), method: str = "POST", path: str | None = None,
                 status: int = 200, request: "type | None" = None, reply: "Any" = "Vm",
                 states: tuple[str, ...] | None = None, done: tuple[str, ...] = (),
                 lock: bool = True, admits: bool = False, hook: str | None = None,
                 event: str | None = None, run: str | None = None, handler: str | None = None,
                 bulk: bool = False, doing: str | None = None, said: str = "",
                 options: tuple[Option, ...] = (), arguments: tuple[Argument, ...] = (),
                 command: str | None = None, plugin: str = "core",
                 query: dict[str, str] | None = None, notes: str = ""):
        self.name, self.summary, self.group, self.help = name, summary, group, help
        self.examples = tuple(examples)
        self.method = method
        self.path = path or (f"/vms/{{ref}}/{name.replace(' ', '/')}" if group == "vm"
                             else f"/node/{name.replace(' ', '/')}")
        self.status, self.request, self.reply = status, request, reply
        self.states, self.done, self.lock, self.admits = states, tuple(done), lock, admits
        self.hook, self.event, self.run, self.handler = hook, event, run, handler
        self.bulk, self.doing = bulk, doing or f"{name}ing"
        self.said = said or f"{name.capitalize()} done for VM {{vm}} on node {{node}}."
        self.options, self.arguments = tuple(options), tuple(arguments)
        self.command, self.plugin, self.query = command, plugin, dict(query or {})
        self.notes = notes

    def __repr__(self) -> str:
        return f"Verb({self.group} {self.name}, {self.method} {self.path})"

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.name.split())

    @property
    def attribute(self) -> str:
        """Its ``NodeClient`` method: ``pause``, ``snapshot_create``."""
        return self.name.replace(" ", "_").replace("-", "_")

    @property
    def on_vm(self) -> bool:
        return "{ref}" in self.path

    def body(self, values: dict) -> dict | None:
        """The request body the command's options and arguments fill (``values`` by field)."""
        if self.request is None:
            return None
        fields = ([f.name for f in self.request.__fields__] if hasattr(self.request, "__fields__")
                  else [o.field for o in self.options] + [a.field for a in self.arguments if a.field])
        return {field: values[field] for field in fields if values.get(field) is not None}

    def say(self, vm: "Any", node: str, reply: "Any", values: dict | None = None) -> str:
        """The line said of one VM the verb acted on (``values``: what the command gave)."""
        if ":" in self.said and " " not in self.said.split(":", 1)[0]:
            return _load(self.said)(vm, node, reply)
        fields = reply.to_json() if hasattr(reply, "to_json") else (reply if isinstance(reply, dict) else {})
        return self.said.format_map(_Fields({**(values or {}), **fields, "vm": vm.name,
                                             "id": vm.id, "node": node, "verb": self.name}))

    def to_json(self) -> dict:
        """What the CLI's view keeps of a plugin's verb: all its command and its route need."""
        return {"name": self.name, "summary": self.summary, "group": self.group,
                "help": self.help, "examples": list(self.examples), "method": self.method,
                "path": self.path, "status": self.status, "request": bool(self.request),
                "states": list(self.states) if self.states is not None else None,
                "done": list(self.done), "bulk": self.bulk, "doing": self.doing,
                "said": self.said, "options": [o.to_json() for o in self.options],
                "arguments": [a.to_json() for a in self.arguments], "plugin": self.plugin}

    @classmethod
    def from_json(cls, data: dict) -> "Verb":
        """A verb as the view keeps it: its reply is read as plain JSON (its class is the
        plugin's), its request only says there is one."""
        return cls(data["name"], data["summary"], group=data["group"], help=data["help"],
                   examples=tuple(data["examples"]), method=data["method"], path=data["path"],
                   status=data["status"], request=dict if data["request"] else None,
                   reply=None, states=tuple(data["states"]) if data["states"] is not None else None,
                   done=tuple(data["done"]), bulk=data["bulk"], doing=data["doing"],
                   said=data["said"], options=tuple(Option.from_json(o) for o in data["options"]),
                   arguments=tuple(Argument.from_json(a) for a in data["arguments"]),
                   plugin=data["plugin"])


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _load(spec: str) -> "Callable":
    """``module:function`` imported when first needed."""
    import importlib

    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)
