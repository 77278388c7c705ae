"""The configuration's schema: the core tables as attrs classes, their field types and
checks, and ``Config``, which holds them and the plugins' tables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import attrs


from ..locations import DEFAULT_PATH, config_path  # noqa: F401 (config_path: public here too)
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


class NonNegativeSeconds(float):
    """A duration in seconds, >= 0 (0: off)."""


class Reserve(str):
    """What a VM holds against ``[host.limits]`` cpu and ram: "running" or "defined"."""


RESERVE_MODES = ("running", "defined")


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
    reserve: Reserve = "running"
    """Which VMs hold their vcpu and vram: "running" ones (and paused ones), as libvirt and
    Incus count, checked again at every start; or every "defined" one, checked at create.
    Disks are always counted."""


@attrs.define
class HostDownloads:
    """``[host.downloads]``: how a template image is fetched into the node's cache."""

    timeout: Seconds = 30.0
    """Seconds without a byte before a download fails (and to connect)."""
    min_rate: NonNegativeInt = 1024
    """Bytes per second a download must average over ``timeout`` seconds; 0: any."""
    max_redirects: NonNegativeInt = 5


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
    downloads: HostDownloads = attrs.Factory(HostDownloads)
    admin_group: str = "virshle-admin"
    """Its members act on every VM of the node, as root does (docs/operating.md, "Owners")."""
    advertise_url: str | None = None
    """How command lines on other hosts reach this node (``ssh://user@host:22/var/lib/
    virshle/virshle.sock``): what a catalogue plugin registers."""

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
    persist: NonNegativeSeconds = 60.0
    """An ``ssh://`` node's connection is held this long after the last command (0: not
    held; OpenSSH's ControlPersist)."""
    labels: dict[str, str] = attrs.Factory(dict)
    """Words about the node (``rack = "a"``), as catalogues give them too."""


@attrs.define
class DiscoveredNode(NodeEntry):
    """A node a catalogue listed (``virshle_discover_nodes``), managed as a ``[[node]]``
    entry: which catalogue (``source``), the node's id, when it last renewed its entry
    (``seen``, epoch seconds), whether the list came from the catalogue's cache, and the
    cordon the entry says."""

    source: str = ""
    id: str | None = None
    seen: float | None = None
    cached: bool = False
    cordoned: bool = False


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
    """``[[template.vm.net]]``: one NIC. The file names its type as a table of one key,
    ``[template.vm.net.type.tap]``; read, it is ``type = "tap"`` and that table's
    ``options``, spelled as on a VM (``structuring.template_net`` reads it)."""

    name: TemplateName
    type: str
    options: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class TemplateNetInFile:
    """``[[template.vm.net]]`` as the file writes it, before ``TemplateNet``."""

    name: TemplateName
    type: dict[str, dict[str, Any]]


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
    ssh_user: str | None = None
    """The user ``vm ssh`` logs in as when the VM's user-data names none (the image's
    default user, say "debian")."""

    def to_json(self) -> dict:
        from ..wire import api

        return api.Template(
            name=self.name, vcpu=self.vcpu, vram=self.vram,
            disks=[api.TemplateDisk(name=d.name, path=d.path if d.is_url else str(d.expanded_path),
                                    readonly=d.readonly, sha256=d.sha256) for d in self.disk],
            nets=[api.TemplateNet(name=n.name, type=n.type, options=n.options) for n in self.net],
            kernel=self.kernel, initramfs=self.initramfs, cmdline=self.cmdline,
            firmware=self.firmware, user_data=self.user_data,
            ssh_authorized_keys=list(self.ssh_authorized_keys), ssh_user=self.ssh_user,
        ).to_json()


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
