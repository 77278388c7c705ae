"""The whole plugin contract: every hook Virshle calls, typed and documented.

Hooks are plain synchronous functions. Call them with keyword arguments.
The daemon runs them in a worker thread and serialises operations on one VM,
so an implementation may block (run a command, wait for a socket).

"Owner" hooks are ``firstresult``: the first implementation that returns
something other than ``None`` answers, so an implementation returns ``None``
for objects that are not its own (another net type, another hypervisor).
"Merged" hooks collect every implementation's answer.

Write an implementation with ``from virshle_core import hookimpl``, and
declare only the arguments you use: pluggy passes arguments by name.
"""

from . import (cleanup, creation, disks, extension, hypervisor, login, migration, network, node,
               startup)
from .startup import virshle_config_sections, virshle_register_commands
from .node import (virshle_node_init, virshle_node_gc, virshle_node_info, virshle_choose_node,
                   virshle_service_after, virshle_discover_nodes)
from .creation import virshle_pre_create, virshle_disk_clone, virshle_provision
from .network import virshle_net_attach, virshle_net_detach
from .hypervisor import (virshle_hypervisor, virshle_start, virshle_stop, virshle_vm_state,
                         virshle_vm_watch, virshle_console, virshle_vm_control, virshle_vm_stats)
from .disks import virshle_snapshot, virshle_disk_resize, virshle_disk_copy
from .cleanup import virshle_lease_query, virshle_post_delete
from .extension import virshle_verbs, virshle_routes, virshle_services
from .login import virshle_guest_login
from .migration import (virshle_net_types, virshle_migration_support, virshle_migration_receive,
                        virshle_migration_send, virshle_migration_end)

SECTIONS = (
    ("Start-up", startup),
    ("Node", node),
    ("VM creation", creation),
    ("Network", network),
    ("Hypervisor", hypervisor),
    ("Disks and snapshots", disks),
    ("DHCP and clean-up", cleanup),
    ("Migration", migration),
    ("Logging in to a guest", login),
    ("Extending the daemon and the command line", extension),
)
"""The hooks by kind, in the order the reference (docs/plugins.md) shows them."""

__all__ = [
    "virshle_config_sections",
    "virshle_register_commands",
    "virshle_node_init",
    "virshle_node_gc",
    "virshle_node_info",
    "virshle_choose_node",
    "virshle_pre_create",
    "virshle_disk_clone",
    "virshle_provision",
    "virshle_net_attach",
    "virshle_net_detach",
    "virshle_hypervisor",
    "virshle_start",
    "virshle_stop",
    "virshle_vm_state",
    "virshle_vm_watch",
    "virshle_console",
    "virshle_vm_control",
    "virshle_snapshot",
    "virshle_disk_resize",
    "virshle_disk_copy",
    "virshle_lease_query",
    "virshle_post_delete",
    "virshle_verbs",
    "virshle_routes",
    "virshle_services",
    "virshle_net_types",
    "virshle_migration_support",
    "virshle_migration_receive",
    "virshle_migration_send",
    "virshle_migration_end",
    "virshle_guest_login",
    "virshle_service_after",
    "virshle_vm_stats",
    "virshle_discover_nodes",
]
