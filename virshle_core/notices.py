"""Warnings a plugin wants the person to see, without failing the operation.

``notice("Kea at unix:///run/kea.sock is unreachable: ...")`` logs a warning
and, when the daemon collects notices for the request under way, sends it
back to the CLI (which prints it at ``-v``). Kea being down must not break
``vm ls``, but the user should be able to find out why the IPs are missing.
"""

from __future__ import annotations

import threading

_local = threading.local()
_last_logged: dict[str, float] = {}
LOG_EVERY = 300.0  # a notice repeated by every listing is logged once per 5 minutes


def collect() -> list[str]:
    """Start collecting notices in this thread; returns the list that fills up."""
    _local.notices = []
    return _local.notices


def stop_collecting() -> None:
    _local.notices = None


def notice(message: str) -> None:
    import time

    from .log import logger

    now = time.monotonic()
    if now - _last_logged.get(message, -LOG_EVERY) >= LOG_EVERY:
        _last_logged[message] = now
        logger.warning(message)
    collected = getattr(_local, "notices", None)
    if collected is not None and message not in collected:
        collected.append(message)
