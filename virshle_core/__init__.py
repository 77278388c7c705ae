"""Virshle: one command line to manage virtual machines on many hosts.

Plugins import only the public names here::

    from virshle_core import hookimpl, VirshleError
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is an import the CLI's start-up avoids

from .errors import ConfigError, Conflict, NotFound, UsageError, VirshleError

if TYPE_CHECKING:
    import pluggy

    from .log import log_command, logger
    from .notices import notice

    hookimpl: pluggy.HookimplMarker
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
    # Read lazily: pluggy, loguru and the version each cost an import that the CLI's
    # listings avoid; plugins get them the moment they ask.
    if name == "hookimpl":
        import pluggy

        globals()["hookimpl"] = marker = pluggy.HookimplMarker("virshle")
        return marker
    if name in ("log_command", "logger"):
        from . import log

        return getattr(log, name)
    if name == "notice":
        from .notices import notice

        return notice
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
