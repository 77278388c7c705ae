"""Room for the store when the disk is full: the node holds a reserve under its root, and
a write that finds the disk full frees it and tries once more."""

from __future__ import annotations

import sqlite3

from ..errors import VirshleError


RESERVE = ".store-reserve"
RESERVE_SIZE = 4 * 1024**2
"""Room the daemon holds for its store (a file of zeros under the root): when the disk
fills up, the store frees it and still records what happens (a forced stop, at least)."""


def _room_kept(method):
    """A write that finds the disk full frees the node's reserve and tries once more; then
    the failure is one line (``no_space``), not SQLite's own."""
    import functools

    @functools.wraps(method)
    def write(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "full" not in str(exc):
                raise
            if self.release_reserve():
                try:
                    return method(self, *args, **kwargs)
                except sqlite3.OperationalError as again:
                    if "full" not in str(again):
                        raise
            raise VirshleError(f"the disk of node {self.node!r} is full: {self.path} cannot "
                               "record the change", "Free some room under the node's root.",
                               code="no_space") from None
    return write


class Room:
    """The reserve of a ``Store`` (``path``: its database, under the node's root)."""

    def keep_reserve(self) -> None:
        """Hold ``RESERVE_SIZE`` bytes under the root for the store (the daemon, at start)."""
        import os

        path = self.path.parent / RESERVE
        if path.exists():
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, RESERVE_SIZE)
        except OSError:  # no room for it now: none is held
            os.close(fd)
            path.unlink(missing_ok=True)
            return
        os.close(fd)

    def release_reserve(self) -> bool:
        """Free the reserve, once, when the disk is full; False when there was none."""
        from ..log import logger

        try:
            (self.path.parent / RESERVE).unlink()
        except FileNotFoundError:
            return False
        logger.warning("the disk under {} is full: the store's reserve ({} MiB) was freed so "
                       "that it can still record; free some room", self.path.parent,
                       RESERVE_SIZE // 1024**2)
        return True
