"""The verbs, each declared once: a ``Verb`` says everything the rest is made from.

From one declaration come the daemon's route and its OpenAPI entry (``daemon/
verb_routes.py``), the ``NodeClient`` method (``client/``), the bulk form (``--all``,
``--state``, several names: ``cli/bulk.py``), the click command and the fast path's
tables (``cli/verbs_cmd.py``, ``cli/fast.py``) and the row of ``docs/api.md``. The core's
verbs are in ``vm.py`` and ``node.py``; a plugin adds its own with the same class through
``virshle_verbs``. A declaration is plain data, light to import (the fast path reads it on
every command), and a plugin's is kept as JSON in the CLI's view of the configuration, so
the fast path knows it without loading plugins.

A verb's work runs in the daemon: ``run`` names ``module:function``, called in a worker
thread as ``function(node, vm, request, **params)`` with the VM locked (``lock``) when the
verb acts on one, and its result is sent as ``reply``. The declared ``event`` is announced
with the VM it left.
"""

from __future__ import annotations

from .declaration import Argument, Option, Record, Verb, _load  # noqa: F401 -- the names plugins use


def core() -> list[Verb]:
    """The core's verbs, on VMs and on the node."""
    from .node import NODE_VERBS
    from .vm import VM_VERBS

    return [*VM_VERBS, *NODE_VERBS]


def every(load_plugins: bool = True) -> list[Verb]:
    """The core's verbs and the plugins' (``virshle_verbs``); a plugin's verb whose name is
    taken is left out with a warning, as a plugin's command is."""
    verbs = core()
    if not load_plugins:
        return verbs
    from ..hooks import plugins

    taken = {(v.group, v.name) for v in verbs} | {(v.method, v.path) for v in verbs}
    for verb in plugins().verbs():
        if (verb.group, verb.name) in taken or (verb.method, verb.path) in taken:
            from ..log import logger

            logger.warning("plugin {}: the verb {} {} is taken; it was left out", verb.plugin,
                           verb.group, verb.name)
            continue
        taken |= {(verb.group, verb.name), (verb.method, verb.path)}
        if verb.event:
            from .. import events

            events.declare(verb.event)
        verbs.append(verb)
    return verbs


def find(group: str, name: str, verbs: list[Verb] | None = None) -> Verb:
    for verb in verbs if verbs is not None else core():
        if verb.group == group and verb.name == name:
            return verb
    raise KeyError(f"{group} {name}")
