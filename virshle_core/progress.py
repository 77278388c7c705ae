"""Progress of long work (copying an image into the cache), for whoever asked for it.

The daemon sets a reporter for the thread that runs an operation; code deep
inside it (the core's disk clone, or a storage plugin) calls ``report()``
without knowing who listens. With no reporter set, ``report()`` does nothing.

The same thread may carry a cancel flag (``set_cancel``): once it is set,
``report()`` and ``check_cancelled()`` raise ``Cancelled``, so long work
stops at its next step and its caller undoes what was done.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

Reporter = Callable[[str, int, int], None]
_local = threading.local()


def set_reporter(reporter: Reporter | None) -> None:
    _local.reporter = reporter


def set_cancel(flag: threading.Event | None) -> None:
    """Make ``flag`` this thread's cancel flag (None: none)."""
    _local.cancel = flag


def current() -> tuple:
    """This thread's (cancel flag, reporter), to hand to work another thread does for it."""
    return getattr(_local, "cancel", None), getattr(_local, "reporter", None)


def check_cancelled() -> None:
    """Raise ``Cancelled`` when this thread's work was cancelled."""
    flag = getattr(_local, "cancel", None)
    if flag is not None and flag.is_set():
        from .errors import Cancelled

        raise Cancelled(getattr(flag, "reason", None) or "the operation was cancelled",
                        "Nothing was left behind.")


def report(what: str, done: int, total: int) -> None:
    """Say that ``done`` of ``total`` units of ``what`` are finished (and stop if cancelled)."""
    check_cancelled()
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


class CancelFlag(threading.Event):
    """A cancel flag that says why: ``flag.cancel("the client went away")``."""

    reason = ""

    def cancel(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
        self.set()
