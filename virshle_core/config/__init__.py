"""The configuration file: attrs models, strict cattrs structuring, errors with lines.

``load_config()`` reads ``--config PATH``, else ``$VIRSHLE_CONFIG``, else
``/etc/virshle/config.toml`` (a missing default file means built-in
defaults). The whole file is checked before any command runs; every problem
is reported as ``FILE:LINE: key.path: what is wrong`` and the CLI exits 2.

Plugins add their own tables through the ``virshle_config_sections`` hook:
``register("dhcp.kea", KeaConfig)`` makes ``[dhcp.kea]`` a known table,
structured into ``KeaConfig`` and available as ``config.section("dhcp.kea")``.

One job a module: ``schema`` (the tables), ``structuring`` (cattrs, with key
paths), ``loading`` (the file, the cross-table checks), ``cache`` (validated
configurations as JSON), ``lines`` (where a key is written). This package
hands their public names on.
"""

from .cache import ParsedCache  # noqa: F401
from .lines import locate  # noqa: F401
from .loading import disk_warnings, load_config, parse_config, warn  # noqa: F401
from .schema import (  # noqa: F401
    DEFAULT_PATH, DEFAULT_ROOT, KEY_TYPES, MAX_COUNT, MAX_SECONDS, MAX_VCPU, MAX_VRAM,
    NODE_NAME_PATTERN, RENAMED, TEMPLATE_NAME_PATTERN, Bytes, Config, CoreConfig, DiscoveredNode,
    HostConfig,
    HostDownloads, HostLimits, NodeEntry, NodeName, NonNegativeInt, Percent, PositiveInt, Seconds, TemplateDisk,
    TemplateName, TemplateNet, Templates, VcpuCount, VmTemplate, config_path, field_check,
    key_entry_problem, url_problem,
)
from .structuring import converter, structure  # noqa: F401
