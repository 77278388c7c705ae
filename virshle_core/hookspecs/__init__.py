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

# Each hook is declared once, in its section's module; the package holds them all (pluggy
# reads them from here), so adding a hook is one function in one module.
HOOKS = {name: spec for _, module in SECTIONS for name, spec in vars(module).items()
         if name.startswith("virshle_") and callable(spec)}
globals().update(HOOKS)
__all__ = sorted(HOOKS)
