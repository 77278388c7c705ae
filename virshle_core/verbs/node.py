"""The core's verbs on a node itself (its listing, ping and info are the node's own routes:
``daemon/routes.py``)."""

from __future__ import annotations

from ..wire import api
from .declaration import Option, Verb

INIT = "virshle_core.daemon.init"

NODE_VERBS = [
    Verb("init", "Prepare the node again (node init): its directories, database and host "
         "network; announces node-initialized.",
         help="Sent by `virshle node init` when the host's daemon serves; force_new is refused "
              "then (409 daemon_running: the database is open).",
         group="node", request=api.NodeInitRequest, reply=api.NodeInitResult,
         event="node-initialized", handler="init", command="virshle_core.cli.node:node_init"),
    Verb("gc", "Remove what looks like Virshle's on the host (taps, OVS ports, macvtaps) but "
         "carries no node's mark (node gc); with dry_run, only say what would go.",
         help="What another node marked is never touched.",
         examples=("virshle node gc --dry-run", "virshle node gc"),
         group="node", request=api.NodeGcRequest, reply=api.NodeGcResult, hook="virshle_node_gc",
         run=f"{INIT}:gc", options=(Option("--dry-run", field="dry_run", flag=True,
                                           help="Only list what would be removed."),),
         command="virshle_core.cli.node:node_gc"),
    Verb("reload", "Read the configuration file again: templates, limits and plugin tables take "
         "effect for new operations; a file that does not validate is refused whole (400 "
         "bad_config) and the old one stays.",
         examples=("virshle node reload",), group="node", reply=api.ReloadResult,
         handler="reload", command="virshle_core.cli.node:node_reload"),
]
