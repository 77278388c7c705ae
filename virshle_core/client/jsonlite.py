"""JSON without the ``json`` package: the C scanner and encoder alone.

``import json`` pulls in ``re`` and ``enum`` (about 7 ms of a CLI start); the
scanner and encoder those wrap live in the built-in ``_json`` module and need
only a handful of settings. Used on the CLI's hot path; anything unusual
raises ValueError, like ``json.loads``.
"""

from __future__ import annotations

import _json

_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_SPACE = " \t\n\r"


class _Settings:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Settings())


def loads(text: str | bytes) -> object:
    """The value of a JSON document (ValueError when it is not one)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    start = len(text) - len(text.lstrip(_SPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"not JSON at character {exc.value}") from None
    if text[end:].strip(_SPACE):
        raise ValueError(f"extra data after the JSON document at character {end}")
    return value


def _default(value: object) -> object:
    to_json = getattr(value, "to_json", None)  # a wire record (api.py)
    return to_json() if to_json is not None else str(value)


_encode = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",",
                             False, False, True)
"""Compact, ASCII, keys in their order; a wire record as its document; anything else JSON
cannot hold is written as ``str(value)``."""


def dumps(value: object) -> str:
    """``json.dumps(value, separators=(",", ":"), default=str)``, without the json package."""
    return "".join(_encode(value, 0))
