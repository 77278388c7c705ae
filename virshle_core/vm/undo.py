"""Undoing what a step made when a later step fails (a start's NICs, for one)."""

from __future__ import annotations

from typing import Any, Callable

from ..log import logger


class Undo:
    """A stack of undo actions, run in reverse when a step fails."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], Any]]] = []

    def push(self, what: str, action: Callable[[], Any]) -> None:
        self._actions.append((what, action))

    def run(self) -> None:
        while self._actions:
            what, action = self._actions.pop()
            try:
                action()
            except Exception as exc:  # keep undoing the rest
                logger.error("rollback: could not undo {}: {}", what, exc)
