"""Where the configuration file is: ``--config PATH``, else ``$VIRSHLE_CONFIG``, else the default.

A module of its own, with no imports, because the CLI's fast path needs the
answer and cannot afford ``virshle_core.config`` (attrs, cattrs).
"""

from __future__ import annotations

import os

DEFAULT_PATH = "/etc/virshle/config.toml"


def config_path(explicit: str | None = None) -> tuple[str, bool]:
    """The file to read and whether the user chose it (a chosen file must exist)."""
    if explicit:
        return explicit, True
    env = os.environ.get("VIRSHLE_CONFIG")
    if env:
        return env, True
    return DEFAULT_PATH, False
