"""Progress of long work (copying an image into the cache), for whoever asked for it.

The daemon sets a reporter for the thread that runs an operation; code deep
inside it (the core's disk clone, or a storage plugin) calls ``report()``
without knowing who listens. With no reporter set, ``report()`` does nothing.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

Reporter = Callable[[str, int, int], None]
_local = threading.local()


def set_reporter(reporter: Reporter | None) -> None:
    _local.reporter = reporter


def report(what: str, done: int, total: int) -> None:
    """Say that ``done`` of ``total`` units of ``what`` are finished."""
    reporter = getattr(_local, "reporter", None)
    if reporter is not None:
        reporter(what, done, total)


class Throttled:
    """Wraps a reporter so it fires at most every ``every`` seconds (and at the end)."""

    def __init__(self, reporter: Reporter, every: float = 0.2):
        self.reporter = reporter
        self.every = every
        self.last = 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self.last >= self.every:
            self.last = now
            self.reporter(what, done, total)
