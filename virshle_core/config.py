"""The configuration file: attrs models, strict cattrs structuring, errors with lines.

``load_config()`` reads ``--config PATH``, else ``$VIRSHLE_CONFIG``, else
``/etc/virshle/config.toml`` (a missing default file means built-in
defaults). The whole file is checked before any command runs; every problem
is reported as ``FILE:LINE: key.path: what is wrong`` and the CLI exits 2.

Plugins add their own tables through the ``virshle_config_sections`` hook:
``register("dhcp.kea", KeaConfig)`` makes ``[dhcp.kea]`` a known table,
structured into ``KeaConfig`` and available as ``config.section("dhcp.kea")``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import attrs

from .errors import ConfigError
from .units import parse_size

from .locations import DEFAULT_PATH, config_path  # noqa: F401 (config_path: public here too)
DEFAULT_ROOT = "/var/lib/virshle"
NODE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
TEMPLATE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
MAX_VCPU = 1024
MAX_VRAM = 64 * 1024**4
MAX_SECONDS = 86400.0
MAX_COUNT = 1_000_000
RENAMED = {"peer": "the original Virshle's [[peer]] is written [[node]] here"}


# Value types. They only mark a field for its structure hook (see _converter);
# the values stored are plain ints, floats and strings.
class PositiveInt(int):
    """An integer >= 1."""


class VcpuCount(int):
    """A number of vcpu: 1 to MAX_VCPU."""


class Percent(int):
    """A limit in percent: 1 to 1,000,000."""


class NonNegativeInt(int):
    """An integer >= 0."""


class Seconds(float):
    """A duration in seconds, > 0."""


class Bytes(int):
    """A size: a number of GiB, or a string with a unit ("512MiB")."""


class TemplateName(str):
    """A template name: letters, digits, '-', '_' and '.'."""


class NodeName(str):
    """A node name: letters, digits, '-', '_' and '.'."""


def field_check(check: Callable[[Any], str | None]) -> Callable[[Any, Any, Any], None]:
    """An attrs validator from ``check(value) -> problem or None``.

    Plugins use it for their config tables so that a bad value is reported
    with its own key path and line, like the core's::

        url: str = attrs.field(default="", validator=field_check(url_problem))
    """

    def validator(instance: Any, attribute: Any, value: Any) -> None:
        problem = check(value)
        if problem:
            raise ValueError(f"\x01{attribute.name}\x01{problem}")

    return validator


# --- core tables -------------------------------------------------------------


@attrs.define
class HostLimits:
    """``[host.limits]``: how much of the host VMs may reserve, in percent."""

    cpu: Percent = 300
    ram: Percent = 250
    disk: Percent = 95


@attrs.define
class HostConfig:
    """``[host]``: this machine's node daemon."""

    root: str = DEFAULT_ROOT
    hypervisor: str = "auto"
    stop_timeout: Seconds = 30.0
    name: str = "default"
    max_count: Percent = 1024
    ssh_authorized_keys: list[str] = attrs.Factory(list)
    limits: HostLimits = attrs.Factory(HostLimits)

    @property
    def root_path(self) -> Path:
        return Path(self.root).expanduser()

    @property
    def socket_path(self) -> Path:
        return self.root_path / "virshle.sock"

    @property
    def db_path(self) -> Path:
        return self.root_path / "virshle.sqlite"


@attrs.define
class NodeEntry:
    """``[[node]]``: a node this CLI manages."""

    name: NodeName
    url: str
    weight: NonNegativeInt = 1
    timeout: Seconds = 10.0


@attrs.define
class TemplateDisk:
    """``[[template.vm.disk]]``: a disk the VM gets its own copy of.

    ``path`` is a file, or an ``https://``/``http://`` URL whose ``sha256``
    is then required: the node downloads it once into its cache.
    """

    name: TemplateName
    path: str
    readonly: bool = False
    sha256: str | None = None

    @property
    def is_url(self) -> bool:
        return self.path.startswith(("https://", "http://"))

    @property
    def expanded_path(self) -> Path:
        return Path(self.path).expanduser()


@attrs.define
class TemplateNet:
    """``[[template.vm.net]]``: one NIC; ``type`` has exactly one key, the net type."""

    name: TemplateName
    type: dict[str, dict[str, Any]]

    @property
    def kind(self) -> str:
        return next(iter(self.type))

    @property
    def options(self) -> dict[str, Any]:
        return self.type[self.kind]


@attrs.define
class VmTemplate:
    """``[[template.vm]]``: a machine preset."""

    name: TemplateName
    vcpu: VcpuCount = 1
    vram: Bytes = 1024**3
    disk: list[TemplateDisk] = attrs.Factory(list)
    net: list[TemplateNet] = attrs.Factory(list)
    kernel: str | None = None
    initramfs: str | None = None
    cmdline: str | None = None
    firmware: str | None = None
    user_data: str | None = None
    ssh_authorized_keys: list[str] = attrs.Factory(list)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "vcpu": self.vcpu,
            "vram": self.vram,
            "disks": [
                {"name": d.name, "path": d.path if d.is_url else str(d.expanded_path),
                 "readonly": d.readonly, **({"sha256": d.sha256} if d.sha256 else {})}
                for d in self.disk
            ],
            "nets": [{"name": n.name, "type": n.kind, "options": n.options} for n in self.net],
            "kernel": self.kernel,
            "initramfs": self.initramfs,
            "cmdline": self.cmdline,
            "firmware": self.firmware,
            "user_data": self.user_data,
            "ssh_authorized_keys": list(self.ssh_authorized_keys),
        }


@attrs.define
class Templates:
    """``[template]``: holds ``[[template.vm]]``."""

    vm: list[VmTemplate] = attrs.Factory(list)


@attrs.define
class CoreConfig:
    host: HostConfig = attrs.Factory(HostConfig)
    node: list[NodeEntry] = attrs.Factory(list)
    template: Templates = attrs.Factory(Templates)


@attrs.define
class Config:
    """The whole configuration: core tables plus the plugins' sections."""

    host: HostConfig = attrs.Factory(HostConfig)
    nodes: list[NodeEntry] = attrs.Factory(list)
    templates: list[VmTemplate] = attrs.Factory(list)
    sections: dict[str, Any] = attrs.Factory(dict)
    path: str | None = None
    warnings: list[str] = attrs.Factory(list)

    def section(self, name: str) -> Any:
        """The structured plugin table ``name`` (e.g. ``"dhcp.kea"``), or None."""
        return self.sections.get(name)

    def template(self, name: str) -> VmTemplate | None:
        for template in self.templates:
            if template.name == name:
                return template
        return None

    def managed_nodes(self) -> list[NodeEntry]:
        """The nodes this CLI manages: ``[[node]]``, else the local node ``default``."""
        if self.nodes:
            return list(self.nodes)
        return [NodeEntry(name="default", url=f"unix://{self.host.socket_path}")]


# --- structuring ---------------------------------------------------------------


def _strict(kind: type, noun: str) -> Callable[[Any, type], Any]:
    def structure(value: Any, _type: type) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"must be {noun}")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"must be {noun}")
        if kind is str and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        if kind is float and not (value == value and abs(value) != float("inf")):
            raise ValueError("must be a finite number")
        return value

    return structure


def _checked(base: type, noun: str, check: Callable[[Any], str | None]) -> Callable:
    strict = _strict(base, noun)

    def structure(value: Any, _type: type) -> Any:
        value = strict(value, _type)
        problem = check(value)
        if problem:
            raise ValueError(problem)
        return value

    return structure


def _name_check(pattern: re.Pattern, what: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not pattern.fullmatch(value):
            return f'"{value}" is not a valid {what} (letters, digits, "-", "_", "." ; at most 63)'
        return None

    return check


def _strict_list(type_: Any, conv: Any) -> Callable[[Any, type], list]:
    from cattrs.cols import list_structure_factory

    structure_items = list_structure_factory(type_, conv)

    def structure(value: Any, _type: type) -> list:
        if not isinstance(value, list):
            raise TypeError("must be a list (write [[...]] tables)")
        return structure_items(value, _type)

    return structure


def _bytes(value: Any, _type: type) -> int:
    size = parse_size(value)
    if size > MAX_VRAM:
        raise ValueError(f"must be at most {MAX_VRAM // 1024**4} TiB")
    return size


_CONVERTER = None


def converter():
    """The strict cattrs converter: no unknown keys, no silent type coercion."""
    global _CONVERTER
    if _CONVERTER is None:
        import cattrs

        conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
        conv.register_structure_hook(str, _strict(str, "a string"))
        conv.register_structure_hook(int, _strict(int, "an integer"))
        conv.register_structure_hook(float, _strict(float, "a number"))
        conv.register_structure_hook(bool, _strict(bool, "true or false"))
        conv.register_structure_hook(
            PositiveInt, _checked(int, "an integer", lambda v: None if v >= 1 else "must be >= 1")
        )
        conv.register_structure_hook(
            NonNegativeInt, _checked(int, "an integer", lambda v: None if 0 <= v <= MAX_COUNT
                                     else ("must be >= 0" if v < 0 else f"must be <= {MAX_COUNT}"))
        )
        conv.register_structure_hook(
            VcpuCount, _checked(int, "an integer", lambda v: None if 1 <= v <= MAX_VCPU
                                else ("must be >= 1" if v < 1 else f"must be <= {MAX_VCPU}"))
        )
        conv.register_structure_hook(
            Percent, _checked(int, "an integer", lambda v: None if 1 <= v <= MAX_COUNT
                              else ("must be >= 1" if v < 1 else f"must be <= {MAX_COUNT}"))
        )
        conv.register_structure_hook(
            Seconds, _checked(float, "a number of seconds", lambda v: None if 0 < v <= MAX_SECONDS
                              else ("must be > 0" if v <= 0 else f"must be <= {MAX_SECONDS:g}"))
        )
        conv.register_structure_hook(Bytes, _bytes)
        conv.register_structure_hook_factory(
            lambda t: getattr(t, "__origin__", None) is list, lambda t: _strict_list(t, conv))
        conv.register_structure_hook(
            TemplateName, _checked(str, "a string", _name_check(TEMPLATE_NAME_PATTERN, "name"))
        )
        conv.register_structure_hook(
            NodeName, _checked(str, "a string", _name_check(NODE_NAME_PATTERN, "node name"))
        )
        _CONVERTER = conv
    return _CONVERTER


def structure(data: Any, cls: type, *, where: str = "") -> Any:
    """Structure ``data`` into ``cls`` strictly; raise ConfigError listing every problem.

    Used for the config file and for API request bodies alike. ``where``
    prefixes each key path (``"template.vm[0]"``).
    """
    try:
        return converter().structure(data, cls)
    except Exception as exc:  # cattrs raises ExceptionGroups of many kinds
        problems = _problems(exc, where)
        raise ConfigError("; ".join(f"{path}: {msg}" for path, msg in problems),
                          problems=[f"{p}: {m}" for p, m in problems]) from None


def _problems(exc: BaseException, where: str) -> list[tuple[str, str]]:
    import cattrs
    from cattrs.errors import ForbiddenExtraKeysError

    def describe(error: BaseException, type_: Any) -> str:
        if isinstance(error, ForbiddenExtraKeysError):
            return "\x00" + "\x00".join(sorted(error.extra_fields))
        if isinstance(error, KeyError):
            return "is required"
        message = str(error.args[0]) if getattr(error, "args", None) else ""
        if isinstance(error, (TypeError, ValueError)) and (
            message.startswith(("must", '"', "\x01"))
        ):
            return message
        return f"must be {_noun(type_)}"

    lines = cattrs.transform_error(exc, path="", format_exception=describe)
    problems: list[tuple[str, str]] = []
    for line in lines:
        message, _, path = line.rpartition(" @ ")
        path = (where + path).lstrip(".")
        if message.startswith("\x01"):
            _, field, message = message.split("\x01", 2)
            path = f"{path}.{field}".lstrip(".")
        if message.startswith("\x00"):
            for key in message.strip("\x00").split("\x00"):
                full = f"{path}.{key}".lstrip(".")
                problems.append((full, f"unknown key; {RENAMED[full]}" if full in RENAMED
                                 else "unknown key"))
        else:
            problems.append((path or "(top level)", message))
    return problems


def _noun(type_: Any) -> str:
    origin = getattr(type_, "__origin__", None)
    if origin is list or type_ is list:
        return "a list (write [[...]] tables)"
    if origin is dict or type_ is dict or attrs.has(type_):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        type_, f"a {getattr(type_, '__name__', type_)}"
    )


# --- loading -------------------------------------------------------------------




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
    cache = _ParsedCache(text, path, sections or {}, hypervisors)
    config = cache.load()
    if config is None:
        config = parse_config(text, path=path, sections=sections, hypervisors=hypervisors)
        cache.store(config)
    else:
        config.warnings = _disk_warnings(path, text, config.templates)
    return config


class _ParsedCache:
    """Validated configurations, kept as JSON per user, keyed by everything they depend on.

    Structuring with cattrs costs about a fifth of a `virshle node ls`; a
    file that validated once is read back from here until it, a plugin
    table's class, or Virshle changes. The entries are plain JSON (never
    pickle: reading one can run no code), rebuilt into the attrs classes
    without validating again. A directory or file that is not the user's
    own, or that others may write, is ignored.
    """

    def __init__(self, text: str, path: str, sections: dict[str, type],
                 hypervisors: list[str] | None = None):
        import hashlib

        self.sections = sections
        digest = hashlib.sha256()
        digest.update(text.encode())
        digest.update(os.path.abspath(path).encode())
        for name, cls in sorted(sections.items()):
            module = sys.modules.get(cls.__module__)
            source = getattr(module, "__file__", "") or ""
            try:
                stamp = os.stat(source).st_mtime_ns
            except OSError:
                stamp = 0
            digest.update(f"{name}={cls.__module__}.{cls.__qualname__}@{stamp};".encode())
        digest.update(f"hypervisors={sorted(hypervisors) if hypervisors is not None else None};".encode())
        digest.update(str(os.stat(__file__).st_mtime_ns).encode())
        self.key = digest.hexdigest()[:32]
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        self.directory = Path(base) / "virshle"
        self.file = self.directory / f"config-{self.key}.json"

    @staticmethod
    def _owned(info: os.stat_result, private: bool) -> bool:
        others = 0o077 if private else 0o022
        return info.st_uid == os.geteuid() and (info.st_mode & others) == 0

    def _trusted(self) -> bool:
        try:
            return self._owned(os.stat(self.directory), private=True)
        except OSError:
            return False

    def load(self) -> "Config | None":
        if os.environ.get("VIRSHLE_NO_CACHE") or not self._trusted():
            return None
        try:
            import json

            with open(self.file, "rb") as handle:
                if not self._owned(os.fstat(handle.fileno()), private=False):
                    return None
                data = json.loads(handle.read())
            return _rebuild_config(data, self.sections)
        except Exception:
            return None  # missing, stale or foreign: validate the file again

    def store(self, config: "Config") -> None:
        if os.environ.get("VIRSHLE_NO_CACHE"):
            return
        try:
            import json
            import tempfile

            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._trusted():
                return
            entries = sorted(self.directory.glob("config-*"), key=lambda p: p.stat().st_mtime)
            for old in entries[:-15]:  # keep the 16 most recent configurations
                old.unlink(missing_ok=True)
            data = _plain(attrs.evolve(config, warnings=[]))
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(tmp, self.file)
        except Exception:
            return  # a cache that cannot be written is only slower


def _plain(value: Any) -> Any:
    """Attrs instances as dicts of their fields, recursively: JSON-ready."""
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _rebuild(cls: type, data: Any) -> Any:
    """The inverse of ``_plain`` for data that was validated when it was cached."""
    import typing

    if not attrs.has(cls):
        origin = typing.get_origin(cls)
        if origin is list and isinstance(data, list):
            (item,) = typing.get_args(cls) or (Any,)
            return [_rebuild(item, value) for value in data]
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            for option in typing.get_args(cls):
                if option is not type(None) and data is not None:
                    return _rebuild(option, data)
            return data
        return data
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _rebuild(hints.get(f.name, Any), data[f.name])
                  for f in attrs.fields(cls) if f.init and f.name in data})


def _rebuild_config(data: dict, sections: dict[str, type]) -> "Config":
    if set(data.get("sections", {})) != set(sections):
        raise ValueError("the plugin tables changed")
    config = _rebuild(Config, {key: value for key, value in data.items() if key != "sections"})
    config.sections = {name: _rebuild(sections[name], value)
                       for name, value in data["sections"].items()}
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
        lines = [f"{_where(label, text, key)}: {key}: {message}" for key, message in problems]
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


def disk_warnings(label: str, text: str, templates: list[VmTemplate]) -> list[tuple[str, str]]:
    """For each local template disk: its path, and the warning that it is not a file."""
    warnings = []
    for ti, template in enumerate(templates):
        for di, disk in enumerate(template.disk):
            if not disk.is_url:
                key = f"template.vm[{ti}].disk[{di}].path"
                warnings.append((str(disk.expanded_path),
                                 f"{_where(label, text, key)}: {key}: {disk.expanded_path} is not a "
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
            if len(net.type) != 1:
                problems.append((f"template.vm[{i}].net[{j}].type",
                                 "must name exactly one net type, e.g. [template.vm.net.type.tap]"))
            elif not isinstance(net.options, dict):
                problems.append((f"template.vm[{i}].net[{j}].type.{net.kind}", "must be a table"))
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


KEY_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")


def key_entry_problem(entry: str) -> str | None:
    """Why an ``ssh_authorized_keys`` entry is neither a public key line nor a key file's path."""
    text = entry.strip()
    if text.startswith(KEY_TYPES):
        parts = text.split()
        if len(parts) < 2:
            return f'"{entry}" is a key type without a key'
        return None
    if text.startswith(("/", "~")):
        return None
    return (f'"{entry}" is neither a public key ("ssh-ed25519 AAAA…") nor the path of a '
            'public key file ("~/.ssh/id_ed25519.pub")')


def url_problem(url: str) -> str | None:
    """Why a node URL is unusable, or None."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":
        if not parts.path.startswith("/") or parts.netloc:
            return f'"{url}" must be unix:///absolute/path/virshle.sock'
        return None
    if parts.scheme == "ssh":
        if not parts.hostname or not parts.path.startswith("/"):
            return f'"{url}" must be ssh://user@host:port/absolute/path/virshle.sock'
        try:
            parts.port
        except ValueError:
            return f'"{url}" has a bad port'
        return None
    return f'"{url}" has an unknown scheme; use unix:// or ssh://'


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


# --- where a key is written -------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\".]+)\s*=")
_INDEX = re.compile(r"\[(\d+)\]")


def _where(label: str, text: str, key: str) -> str:
    line = locate(text, key)
    return f"{label}:{line}" if line else label


def locate(text: str, key_path: str) -> int | None:
    """The line (1-based) where ``key_path`` (``template.vm[0].vcpu``) is written.

    Falls back to the line of the closest enclosing table; None when the key
    is not in the text at all (a built-in default).
    """
    array_counts: dict[str, int] = {}
    current = ""
    positions: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            is_array = header.group(1) == "[["
            names = [part.strip().strip('"') for part in header.group(2).split(".")]
            path = ""
            for i, name in enumerate(names):
                path = f"{path}.{name}" if path else name
                last = i == len(names) - 1
                if last and is_array:
                    array_counts[path] = array_counts.get(path, -1) + 1
                    positions.setdefault(path, number)
                    path = f"{path}[{array_counts[path]}]"
                elif path in array_counts:
                    path = f"{path}[{array_counts[path]}]"
                positions.setdefault(path, number)
            current = path
            continue
        key = _KEY.match(line)
        if key:
            name = key.group(1).strip().strip('"')
            full = f"{current}.{name}" if current else name
            positions.setdefault(full, number)
    probe = key_path
    while probe:
        if probe in positions:
            return positions[probe]
        # template.vm[0].vcpu -> template.vm[0] -> template.vm ...
        if probe.endswith("]"):
            probe = probe[: probe.rindex("[")]
        elif "." in probe:
            probe = probe.rsplit(".", 1)[0]
        else:
            break
    return None


def warn(config: Config) -> None:
    """Print the load warnings (missing template disks) once, on stderr."""
    for message in config.warnings:
        print(f"Warning: {message}", file=sys.stderr)
