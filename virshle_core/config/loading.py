"""Reading the configuration file: TOML, the plugins' tables, the core's, the checks that
span tables, and the warnings about template disks.

``load_config()`` reads ``--config PATH``, else ``$VIRSHLE_CONFIG``, else
``/etc/virshle/config.toml`` (a missing default file means built-in defaults).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any


from ..errors import ConfigError
from .cache import ParsedCache
from .lines import written_at
from .schema import Config, CoreConfig, VmTemplate, config_path, key_entry_problem, url_problem
from .structuring import structure


def load_config(
    explicit: str | None = None,
    sections: dict[str, type] | None = None,
    hypervisors: list[str] | None = None,
) -> Config:
    """Read, validate and structure the configuration.

    :param explicit: ``--config PATH`` if given.
    :param sections: plugin tables, ``{"dhcp.kea": KeaConfig}``.
    :param hypervisors: the hypervisors plugins offer (``[host] hypervisor``
        must be one of them, or ``auto``); None skips that check.
    :raises ConfigError: with every problem found, each with its line.
    """
    path, chosen = config_path(explicit)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        if chosen:
            raise ConfigError(
                f"{path}: no such configuration file",
                "Check the path given with --config or VIRSHLE_CONFIG.",
            ) from None
        return parse_config("", path=None, sections=sections, hypervisors=hypervisors)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not a TOML text file: byte {exc.start} is not UTF-8",
            "A configuration file is UTF-8 text; check that --config names the right file.",
        ) from None
    cache = ParsedCache(text, path, sections or {}, hypervisors)
    config = cache.load()
    if config is None:
        config = parse_config(text, path=path, sections=sections, hypervisors=hypervisors)
        cache.store(config)
    else:
        config.warnings = _disk_warnings(path, text, config.templates)
    return config


def parse_config(text: str, *, path: str | None, sections: dict[str, type] | None = None,
                 hypervisors: list[str] | None = None) -> Config:
    """Validate and structure configuration text (see ``load_config``)."""
    import tomllib

    label = path or "config.toml"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{label}:{line.group(1)}" if line else label
        raise ConfigError(
            f"{where}: not valid TOML: {exc}",
            "Fix the syntax; see the config examples in README.md.",
        ) from None

    problems: list[tuple[str, str]] = []
    plugin_sections: dict[str, Any] = {}
    for dotted, cls in sorted((sections or {}).items()):
        table = _pop_table(raw, dotted)
        if table is _MISSING:
            table = {}
        if not isinstance(table, dict):
            problems.append((dotted, "must be a table"))
            continue
        try:
            plugin_sections[dotted] = structure(table, cls, where=dotted)
        except ConfigError as exc:
            problems.extend(_split(exc))
    _drop_empty_tables(raw)

    core = None
    try:
        core = structure(raw, CoreConfig)
    except ConfigError as exc:
        problems.extend(_split(exc))

    warnings: list[str] = []
    if core is not None:
        problems.extend(_cross_checks(core, hypervisors))
        warnings = _disk_warnings(label, text, core.template.vm)

    if problems:
        lines = [f"{written_at(label, text, key)}: {key}: {message}" for key, message in problems]
        raise ConfigError(
            lines[0] if len(lines) == 1 else f"{len(lines)} problems in {label}:\n  " + "\n  ".join(lines),
            "Fix the configuration file; `virshle --help` names the options.",
            problems=lines,
        )

    assert core is not None
    return Config(
        host=core.host,
        nodes=core.node,
        templates=core.template.vm,
        sections=plugin_sections,
        path=path,
        warnings=warnings,
    )


def disk_warnings(label: str, text: str, templates: list[VmTemplate], skip_home: bool = False
                  ) -> list[tuple[str, str]]:
    """For each local template disk: its path, and the warning that it is not a file;
    ``skip_home`` leaves out paths under ``~`` (the daemon's home, not this process's)."""
    warnings = []
    for ti, template in enumerate(templates):
        for di, disk in enumerate(template.disk):
            if not disk.is_url and not (skip_home and disk.path.startswith("~")):
                key = f"template.vm[{ti}].disk[{di}].path"
                warnings.append((str(disk.expanded_path),
                                 f"{written_at(label, text, key)}: {key}: {disk.expanded_path} is not a "
                                 f"file (template {template.name!r} cannot create VMs until it exists)"))
    return warnings


def _disk_warnings(label: str, text: str, templates: list[VmTemplate]) -> list[str]:
    return [message for path, message in disk_warnings(label, text, templates)
            if not os.path.isfile(path)]


def _split(exc: ConfigError) -> list[tuple[str, str]]:
    out = []
    for problem in exc.problems:
        key, _, message = problem.partition(": ")
        out.append((key, message))
    return out


MAX_ROOT = 107 - len("/vm/") - 36 - len("/console.sock")  # a unix socket path is at most 107 bytes


def _cross_checks(core: CoreConfig, hypervisors: list[str] | None = None) -> list[tuple[str, str]]:
    problems = []
    root = str(core.host.root_path)
    if not core.host.root_path.is_absolute():
        problems.append(("host.root", f'"{core.host.root}" must be an absolute path, '
                                      'e.g. "/var/lib/virshle"'))
    if hypervisors is not None and core.host.hypervisor not in ("auto", *hypervisors):
        offered = ", ".join(f'"{h}"' for h in sorted(hypervisors)) or "none installed"
        problems.append(("host.hypervisor", f'"{core.host.hypervisor}" is offered by no plugin; '
                                            f'use "auto" or one of: {offered}'))
    if len(root.encode()) > MAX_ROOT:
        problems.append(("host.root", f'"{root}" is {len(root.encode())} bytes long; at most {MAX_ROOT} '
                         "fit (VM sockets live under it, and a unix socket path holds 107 bytes)"))
    seen: dict[str, int] = {}
    for i, template in enumerate(core.template.vm):
        if template.name in seen:
            problems.append((f"template.vm[{i}].name",
                             f'"{template.name}" is already the name of template.vm[{seen[template.name]}]'))
        seen.setdefault(template.name, i)
        disk_names: set[str] = set()
        for j, disk in enumerate(template.disk):
            if disk.name in disk_names:
                problems.append((f"template.vm[{i}].disk[{j}].name", f'"{disk.name}" is used twice'))
            disk_names.add(disk.name)
            if disk.is_url and not disk.sha256:
                problems.append((f"template.vm[{i}].disk[{j}].sha256",
                                 f'is required for a download ({disk.path}): the image is checked '
                                 'against it, e.g. sha256 = "9f86d0…" (64 hex digits)'))
            if disk.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", disk.sha256):
                problems.append((f"template.vm[{i}].disk[{j}].sha256",
                                 f'"{disk.sha256}" is not a sha256 digest (64 hex digits)'))
            if "://" in disk.path and not disk.is_url:
                problems.append((f"template.vm[{i}].disk[{j}].path",
                                 f'"{disk.path}": only https:// and http:// URLs are downloaded'))
        for j, key in enumerate(template.ssh_authorized_keys):
            problem = key_entry_problem(key)
            if problem:
                problems.append((f"template.vm[{i}].ssh_authorized_keys[{j}]", problem))
        net_names: set[str] = set()
        for j, net in enumerate(template.net):
            if net.name in net_names:
                problems.append((f"template.vm[{i}].net[{j}].name", f'"{net.name}" is used twice'))
            net_names.add(net.name)
        if template.firmware and template.kernel:
            problems.append((f"template.vm[{i}].firmware", "give either kernel (direct boot) or firmware, not both"))
        for key in ("initramfs", "cmdline"):
            if getattr(template, key) and not template.kernel:
                problems.append((f"template.vm[{i}].{key}", "needs kernel (direct kernel boot)"))
    for j, key in enumerate(core.host.ssh_authorized_keys):
        problem = key_entry_problem(key)
        if problem:
            problems.append((f"host.ssh_authorized_keys[{j}]", problem))
    names: dict[str, int] = {}
    for i, node in enumerate(core.node):
        if node.name in names:
            problems.append((f"node[{i}].name", f'"{node.name}" is already the name of node[{names[node.name]}]'))
        names.setdefault(node.name, i)
        problem = url_problem(node.url)
        if problem:
            problems.append((f"node[{i}].url", problem))
    return problems


_MISSING = object()


def _pop_table(raw: dict, dotted: str) -> Any:
    keys = dotted.split(".")
    parent = raw
    for key in keys[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            return _MISSING
    if not isinstance(parent, dict) or keys[-1] not in parent:
        return _MISSING
    return parent.pop(keys[-1])


def _drop_empty_tables(raw: dict) -> None:
    # [dhcp] only held [dhcp.kea]; once the plugin took its table, [dhcp] is not unknown.
    for key in list(raw):
        value = raw[key]
        if isinstance(value, dict):
            _drop_empty_tables(value)
            if not value and key not in {"host", "template"}:
                del raw[key]


def warn(config: Config) -> None:
    """Print the load warnings (missing template disks) once, on stderr."""
    for message in config.warnings:
        print(f"Warning: {message}", file=sys.stderr)
