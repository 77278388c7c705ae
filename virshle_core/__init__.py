"""Virshle: one command line to manage virtual machines on many hosts.

Plugins import only the public names here::

    from virshle_core import hookimpl, VirshleError
"""

from __future__ import annotations

import pluggy

from .errors import ConfigError, Conflict, NotFound, UsageError, VirshleError
from .log import log_command, logger
from .notices import notice

hookimpl = pluggy.HookimplMarker("virshle")
"""Marker for plugin hook implementations: ``@hookimpl`` above a ``virshle_*`` function."""

__all__ = [
    "hookimpl",
    "VirshleError",
    "UsageError",
    "ConfigError",
    "NotFound",
    "Conflict",
    "log_command",
    "notice",
    "logger",
    "__version__",
]


def __getattr__(name: str):
    # The version is read lazily: finding it costs an import the CLI avoids.
    if name == "__version__":
        return _version()
    raise AttributeError(name)


def _version() -> str:
    import os
    import sys

    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for dirname in names:
            if dirname.startswith("virshle-") and dirname.endswith(".dist-info"):
                return dirname[len("virshle-"):-len(".dist-info")]
    return "0.0.0+unknown"
