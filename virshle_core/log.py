"""Logging: loguru on stderr, imported only when something is logged.

Verbosity maps to levels in one place: ``-q`` errors only, default warnings,
``-v`` info, ``-vv``/``-vvv`` debug, ``-vvvv`` trace (every external command
and netlink change, as the equivalent command line).
"""

from __future__ import annotations

import sys
from typing import Any

LEVELS = {-1: "ERROR", 0: "WARNING", 1: "INFO", 2: "DEBUG", 3: "DEBUG", 4: "TRACE"}
_level = "WARNING"
_configured = False


def level_for(verbosity: int) -> str:
    return LEVELS[max(-1, min(4, verbosity))]


def configure(verbosity: int) -> None:
    """Set the log level from the number of ``-v`` (``-1`` for ``-q``)."""
    global _level, _configured
    _level = level_for(verbosity)
    if _configured:
        _install()


def _install() -> Any:
    global _configured
    from loguru import logger as _logger

    _logger.remove()
    fmt = (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
        "<cyan>{extra[plugin]}</cyan>{message}"
    )
    _logger.configure(extra={"plugin": ""})
    _logger.add(sys.stderr, level=_level, format=fmt, colorize=None, backtrace=False,
                diagnose=False)
    _configured = True
    return _logger


class _LazyLogger:
    """Stands for loguru's logger; the import happens at the first log call."""

    def __getattr__(self, name: str) -> Any:
        from loguru import logger as _logger

        if not _configured:
            _install()
        return getattr(_logger, name)


logger: Any = _LazyLogger()


def log_command(argv: list[str]) -> None:
    """Log an external command, as it could be typed, at trace level (``-vvvv``)."""
    import shlex

    logger.trace("$ {}", shlex.join(str(a) for a in argv))
