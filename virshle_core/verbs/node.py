"""The core's verbs on a node itself (its listing, ping and info are the node's own routes:
``daemon/routes.py``)."""

from __future__ import annotations

from ..wire import api
from .declaration import Option, Verb

INIT = "virshle_core.daemon.init"
INFO = "virshle_core.daemon.nodeinfo"

NODE_VERBS = [
    Verb("init", "Create what this host needs to be a node; safe to run again.",
         help="\b\nMakes [host] root (default /var/lib/virshle) with vm/ and cache/,\n"
              "the database virshle.sqlite, the group 'virshle' that may use the\n"
              "socket, and (with --net) the host network of the installed plugins.",
         examples=("virshle node init --all", "virshle node init --net"),
         notes="Done by the daemon when one serves (it announces node-initialized): body "
               "`{\"parts\": [\"dir\", \"db\", \"net\"], \"force_new\": false}` (both optional); "
               "answers `{\"root\": ..., \"done\": {part: [what was made]}}`. `force_new` is "
               "refused then (409 `daemon_running`: the database is open).",
         group="node", request=api.NodeInitRequest, reply=api.NodeInitResult,
         event="node-initialized", handler="init", command="virshle_core.cli.node:node_init"),
    Verb("gc", "Remove what looks like Virshle's on this host but no node owns.",
         help="\b\nnode init and a daemon's start reap only what carries this node's mark.\n"
              "Taps, OVS ports and macvtaps that look like Virshle's but carry no node's\n"
              "mark (left by a Virshle older than the marks, or made by hand) are only\n"
              "reported; gc removes them. What another node marked is never touched.",
         examples=("virshle node gc --dry-run", "virshle node gc"),
         notes="Through `virshle_node_gc`; with `dry_run`, only says what would go; answers "
               "`{\"dry_run\", \"removed\": [a line each]}`.",
         group="node", request=api.NodeGcRequest, reply=api.NodeGcResult, hook="virshle_node_gc",
         run=f"{INIT}:gc", options=(Option("--dry-run", field="dry_run", flag=True,
                                           help="Only list what would be removed."),),
         command="virshle_core.cli.node:node_gc"),
    Verb("reload", "Make the node daemons read their configuration file again (as SIGHUP does).",
         help="\b\nTemplates, [host.limits] and plugin tables take effect for new\n"
              "operations; running VMs are not touched. A file that does not\n"
              "validate is refused whole, with each problem's line, and the\n"
              "configuration in force stays. Exit 2 when a file was refused.",
         examples=("virshle node reload", "virshle node reload --node remote_1"),
         notes="Answers `{\"path\", \"templates\", \"warnings\"}`; a file that does not "
               "validate is a 400 `bad_config` (each problem with its file:line); a changed "
               "`[host] root` or `name` needs a restart.",
         group="node", reply=api.ReloadResult, handler="reload",
         command="virshle_core.cli.node:node_reload"),
    Verb("cordon", "Keep new VMs off a node: the balancer skips it (vm create, node drain) "
         "until node uncordon.",
         help="Its VMs run on, and `--node NAME` still places there. The node keeps its "
              "cordon itself: every command line that asks it sees it (node ls).",
         examples=("virshle node cordon remote_1", "virshle node cordon remote_1 --reason kernel-update"),
         group="node", request=api.CordonRequest, reply=api.Cordon, event="node-cordoned",
         run=f"{INFO}:cordon", said="Cordoned node {node}: new VMs go elsewhere.",
         options=(Option("--reason", field="reason", metavar="TEXT",
                         help="Why, shown by node ls -v."),),
         command="virshle_core.cli.moves:node_cordon",
         notes="Answers `{\"cordoned\": true, \"since\", \"reason\"}`; cordoning a cordoned node keeps its first time and reason. `GET /node/ping` says `cordoned`, `GET /node/info` has the `cordon`."),
    Verb("uncordon", "Let the balancer place new VMs on a node again.",
         examples=("virshle node uncordon remote_1",), group="node", reply=api.Cordon,
         event="node-cordoned", run=f"{INFO}:uncordon",
         said="Uncordoned node {node}: it takes new VMs again.",
         command="virshle_core.cli.moves:node_uncordon",
         notes="Answers `{\"cordoned\": false}`."),
]
