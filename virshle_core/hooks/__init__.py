"""How the core talks to plugins: the plugin manager (``manager``: entry points, allow and
deny lists), the typed hook calls (``calls``), and the core's own fallbacks
(``defaults``, registered as the plugin "core").

``plugins()`` asks the plugins: ``plugins().net_attach(vm=vm, net=net, node=node)``.
"""

from .manager import (  # noqa: F401 -- the names the rest of the core and plugin tests use
    PluginInfo, broken_plugins, config_sections, get_plugin_manager, hypervisor_names,
    plugin_infos, plugins, time_hook_calls,
)
