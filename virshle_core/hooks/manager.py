"""The plugin manager: entry-point discovery, allow and deny lists.

Every plugin, built-in or third-party, is a module named by an entry point
in the ``virshle`` group. ``VIRSHLE_PLUGINS=ovs,qemu`` loads only those;
``VIRSHLE_DISABLE_PLUGINS=lb`` blocks some. A plugin that fails to import or
to register is reported once on stderr and skipped.

Discovery reads ``entry_points.txt`` of the distributions on ``sys.path``
itself rather than through ``importlib.metadata``: that module alone costs
more than the whole budget of a fast ``virshle node ls`` (see bench/).

The core asks the plugins through ``plugins()`` (typed: ``calls.Hooks``).
``VIRSHLE_TRACE_HOOKS=1`` logs each hook call on stderr: its arguments'
names, the plugins that answered it, and its time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import attrs
import pluggy

from .. import hookspecs

if TYPE_CHECKING:
    from .calls import Hooks

GROUP = "virshle"
CORE_PLUGINS = ("virshle_core.hooks.defaults",)


@attrs.define
class EntryPoint:
    name: str
    value: str
    distribution: str
    version: str


@attrs.define
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    hooks: list[str]
    core: bool = False

    def to_json(self) -> dict:
        return attrs.asdict(self)


@attrs.define
class BrokenPlugin:
    name: str
    distribution: str
    error: str


_manager: pluggy.PluginManager | None = None
_entry_points: dict[str, EntryPoint] = {}
_broken: list[BrokenPlugin] = []


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def discover_entry_points(group: str = GROUP) -> list[EntryPoint]:
    """Entry points of ``group`` in every distribution on ``sys.path``, first one wins."""
    found: dict[str, EntryPoint] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for dirname in sorted(names):
            if not dirname.endswith((".dist-info", ".egg-info")):
                continue
            meta_dir = Path(entry or ".", dirname)
            try:
                text = (meta_dir / "entry_points.txt").read_text()
            except OSError:
                continue
            if f"[{group}]" not in text:
                continue
            dist, version = _name_version(meta_dir, dirname)
            for name, value in _parse_section(text, group):
                found.setdefault(name, EntryPoint(name, value, dist, version))
    return list(found.values())


def _parse_section(text: str, group: str) -> list[tuple[str, str]]:
    out, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            inside = line == f"[{group}]"
            continue
        if inside and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def _name_version(meta_dir: Path, dirname: str) -> tuple[str, str]:
    name, version = "", ""
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(meta_dir / filename) as handle:
                for line in handle:
                    if line.startswith("Name:"):
                        name = line[5:].strip()
                    elif line.startswith("Version:"):
                        version = line[8:].strip()
                    if (name and version) or not line.strip():
                        break
            break
        except OSError:
            continue
    if not name:
        stem = dirname.rsplit(".", 1)[0]
        name, _, version = stem.partition("-")
    return name, version


def _load_module(value: str) -> Any:
    import importlib

    module_name, _, attr = value.partition(":")
    module = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        module = getattr(module, part)
    return module


def loaded() -> bool:
    """Whether this process has loaded its plugins (a command line does only when it must)."""
    return _manager is not None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, loading plugins on first use."""
    global _manager
    if _manager is None:
        _manager = _build()
    return _manager


def _build() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for module_name in CORE_PLUGINS:
        pm.register(_load_module(module_name), name="core")

    allow = _env_list("VIRSHLE_PLUGINS")
    deny = _env_list("VIRSHLE_DISABLE_PLUGINS") or set()
    for ep in discover_entry_points():
        if (allow is not None and ep.name not in allow) or ep.name in deny:
            continue
        try:
            plugin = _load_module(ep.value)
            pm.register(plugin, name=ep.name)
            pm.check_pending()
        except Exception as exc:  # one broken plugin must never take the CLI down
            try:
                if pm.has_plugin(ep.name):
                    pm.unregister(name=ep.name)
            except Exception:
                pass
            reason = f"{type(exc).__name__}: {exc}"
            _broken.append(BrokenPlugin(ep.name, ep.distribution, reason))
            print(
                f"Warning: plugin {ep.name!r} ({ep.distribution}) could not be loaded and is "
                f"skipped: {reason}\n  Hint: reinstall or fix it, or set "
                f"VIRSHLE_DISABLE_PLUGINS={ep.name}.",
                file=sys.stderr,
            )
            continue
        _entry_points[ep.name] = ep
    if os.environ.get("VIRSHLE_TRACE_HOOKS"):
        _trace(pm)
    return pm


def time_hook_calls(record: Callable[[str, str, float], None]) -> None:
    """Call ``record(hook, plugin, seconds)`` after each hook implementation runs (the
    metrics plugin's histogram). Safe to call again: implementations timed already, and
    hook wrappers, are left as they are; a reload's new plugins get timed by the next call.
    """
    import time

    pm = get_plugin_manager()
    for hook_name in pm.hook.__dict__:
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if getattr(impl.function, "_timed", False) or impl.hookwrapper or impl.wrapper:
                continue
            plugin = pm.get_name(impl.plugin) or "?"

            def timed(*args, _function=impl.function, _hook=hook_name, _plugin=plugin):
                started = time.perf_counter()
                try:
                    return _function(*args)
                finally:
                    record(_hook, _plugin, time.perf_counter() - started)

            timed._timed = True
            impl.function = timed


def _trace(pm: pluggy.PluginManager) -> None:
    """Log every hook call on stderr, as datasette's DATASETTE_TRACE_PLUGINS does."""
    import threading
    import time

    calls = threading.local()  # hook calls nest (a hook may call another), per thread

    def before(hook_name: str, impls: list, kwargs: dict) -> None:
        calls.__dict__.setdefault("starts", []).append(time.perf_counter())

    def after(outcome: Any, hook_name: str, impls: list, kwargs: dict) -> None:
        elapsed = time.perf_counter() - calls.starts.pop()
        names = ", ".join(pm.get_name(impl.plugin) or "?" for impl in reversed(impls)) or "none"
        failed = f", raised {type(outcome.exception).__name__}" if outcome.exception else ""
        print(f"hook {hook_name}({', '.join(kwargs)}) by {names}: {elapsed * 1000:.2f} ms{failed}",
              file=sys.stderr, flush=True)

    pm.add_hookcall_monitoring(before, after)


def plugins() -> "Hooks":
    """The plugins, asked through the typed hook calls:
    ``plugins().net_attach(vm=vm, net=net, node=node)``."""
    from .calls import Hooks

    global _hooks
    manager = get_plugin_manager()
    if _hooks is None or _hooks._manager is not manager:
        _hooks = Hooks(manager)
    return _hooks


_hooks: "Hooks | None" = None


def plugin_infos() -> list[PluginInfo]:
    """Every registered plugin with the hooks it implements."""
    pm = get_plugin_manager()
    infos = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(caller.name for caller in (pm.get_hookcallers(plugin) or []))
        ep = _entry_points.get(name)
        if name == "core":
            from .. import __version__

            infos.append(PluginInfo(name, "virshle", __version__, plugin.__name__, hooks, core=True))
        else:
            infos.append(PluginInfo(
                name,
                ep.distribution if ep else "",
                ep.version if ep else "",
                getattr(plugin, "__name__", repr(plugin)),
                hooks,
            ))
    infos.sort(key=lambda info: (not info.core, info.name))
    return infos


def broken_plugins() -> list[BrokenPlugin]:
    get_plugin_manager()
    return list(_broken)


def config_sections() -> dict[str, type]:
    """The plugin tables registered through ``virshle_config_sections``."""
    sections: dict[str, type] = {}

    def register(name: str, cls: type) -> None:
        if not attrs.has(cls):
            raise TypeError(f"config section {name!r} must be an attrs class, got {cls!r}")
        if name in sections and sections[name] is not cls:
            print(f"Warning: config section [{name}] is registered twice; keeping the first.",
                  file=sys.stderr)
            return
        sections[name] = cls

    get_plugin_manager().hook.virshle_config_sections(register=register)
    return sections


def hypervisor_names() -> list[str]:
    """The hypervisors on offer: the plugins that implement ``virshle_start``.

    A hypervisor is named by its plugin's entry point name (``qemu``, ``ch``),
    which is also what its ``VmmHandle.hypervisor`` says.
    """
    pm = get_plugin_manager()
    return sorted({pm.get_name(impl.plugin) for impl in pm.hook.virshle_start.get_hookimpls()}
                  - {"core", None})
