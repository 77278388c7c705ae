"""JSON without the ``json`` package: the C scanner and encoder alone.

``import json`` pulls in ``re`` and ``enum``: 6.2 to 7.9 ms with Debian's Python 3.11
(``python3 -X importtime -c "import json"``), against 0.18 ms for ``_json``, the C
module the ``json`` package wraps; a listing of a regular install takes about 35 ms in
all, so it is kept on the CLI's hot path. ``_json`` is CPython's private module: where it
is not there (another Python) or has changed, this falls back to ``json``. Anything
unusual raises ValueError, like ``json.loads``.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # another Python than CPython
    _json = None

_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_SPACE = " \t\n\r"


class _Settings:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


try:
    _scan = _json.make_scanner(_Settings())
except (AttributeError, TypeError):
    _scan = None


def loads(text: str | bytes) -> object:
    """The value of a JSON document (ValueError when it is not one)."""
    if _scan is None:
        import json

        return json.loads(text)
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


try:
    _encode = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",",
                                 False, False, True)
except (AttributeError, TypeError):
    _encode = None
"""Compact, ASCII, keys in their order; a wire record as its document; anything else JSON
cannot hold is written as ``str(value)``."""


def dumps(value: object) -> str:
    """``json.dumps(value, separators=(",", ":"), default=str)``, without the json package."""
    if _encode is None:
        import json

        return json.dumps(value, separators=(",", ":"), default=_default)
    return "".join(_encode(value, 0))
