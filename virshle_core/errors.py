"""Errors that reach people.

Every error carries a short machine ``code`` (used in API replies), a
``message`` saying what failed, and a ``hint`` saying what to do about it.
The CLI exits with ``exit_code``; the daemon answers with ``http_status``.
"""

from __future__ import annotations

WORD_LIMIT = 80
"""Characters of one word of an error (a name, a path, a key, a value) that are shown."""
MESSAGE_LIMIT = 1000


def cut(text: str, limit: int = WORD_LIMIT) -> str:
    """``text`` at most ``limit`` characters long, its end replaced by an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def shorten(text: str) -> str:
    """An error's text with every word cut to ``WORD_LIMIT`` characters and the whole to
    ``MESSAGE_LIMIT``: errors quote what they were given (names, paths, keys, config
    values), and a 10,000-character name must not come back whole."""
    if len(text) <= WORD_LIMIT:
        return text
    words = text.split(" ")
    if any(len(word) > WORD_LIMIT for word in words):
        text = " ".join(cut(word) for word in words)
    return cut(text, MESSAGE_LIMIT)


class VirshleError(Exception):
    """An operation failed for a reason a person can act on."""

    code = "failed"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, hint: str = "", *, code: str | None = None):
        message, hint = shorten(message), shorten(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code:
            self.code = code

    node: str | None = None
    """The node whose error it is, when a node's (``--json`` failures name it)."""

    def to_json(self) -> dict:
        return {"error": self.code, "message": self.message, "hint": self.hint}

    def __str__(self) -> str:
        return self.message


class UsageError(VirshleError):
    """Bad input: a wrong argument or request body. Exit 2, HTTP 400."""

    code = "bad_request"
    exit_code = 2
    http_status = 400


class ConfigError(UsageError):
    """The configuration file is wrong. Exit 2."""

    code = "bad_config"

    def __init__(self, message: str, hint: str = "", *, problems: list[str] | None = None):
        super().__init__(message, hint)
        self.problems = [shorten(problem) for problem in problems or [message]]


class NotFound(VirshleError):
    """The VM, template or node named does not exist. HTTP 404."""

    code = "not_found"
    http_status = 404


class Conflict(VirshleError):
    """The request clashes with the current state (name taken, VM running). HTTP 409."""

    code = "conflict"
    http_status = 409


class Cancelled(VirshleError):
    """The operation was cancelled (its client left, or the daemon is stopping) and undone."""

    code = "cancelled"
    http_status = 503


class NodeUnavailable(VirshleError):
    """A node could not be reached or did not answer."""

    code = "node_unavailable"
    http_status = 503

    def __init__(self, message: str, hint: str = "", *, status: str = "unreachable"):
        super().__init__(message, hint)
        self.status = status


def from_json(payload: dict, http_status: int) -> VirshleError:
    """Rebuild the error a daemon sent, keeping its code, message and hint."""
    by_status = {400: UsageError, 404: NotFound, 409: Conflict, 413: UsageError}
    cls = by_status.get(http_status, VirshleError)
    return cls(
        str(payload.get("message") or f"the node answered HTTP {http_status}"),
        str(payload.get("hint") or ""),
        code=str(payload.get("error") or cls.code),
    )
