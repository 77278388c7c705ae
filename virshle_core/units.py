"""Sizes as people write them: ``2`` (GiB), ``"512MiB"``, ``"1.5G"``."""

from __future__ import annotations

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
    "p": 1024**5, "pb": 1000**5, "pib": 1024**5,
}
MAX_SIZE = 2**63 - 1
"""The largest size the store can hold (SQLite's INTEGER): 8 EiB."""
_SIZE_PATTERN = r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*"

GiB = 1024**3


def parse_size(value: object, *, bare_unit: int = GiB) -> int:
    """Return a size in bytes.

    A bare number counts in ``bare_unit`` (GiB for ``vram``, as the seed
    writes ``vram = 2``); a string carries its own unit. Raises ValueError
    with a message fit for a person.
    """
    if isinstance(value, bool):
        raise ValueError('must be a size such as 2 (GiB) or "512MiB"')
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError("must be greater than 0")
        return int(value * bare_unit)
    if isinstance(value, str):
        import re  # only configurations parse sizes; listings just print them

        match = re.fullmatch(_SIZE_PATTERN, value)
        if match:
            number, unit = float(match.group(1)), match.group(2).lower()
            if unit in _UNITS:
                size = int(number * _UNITS[unit])
                if size <= 0:
                    raise ValueError("must be greater than 0")
                return size
        raise ValueError(f'"{value}" is not a size; write 2 (GiB) or "512MiB"')
    raise ValueError('must be a size such as 2 (GiB) or "512MiB"')


def human_size(size: int | float | None, short: bool = False) -> str:
    """``2147483648`` → ``"2GiB"``; ``1536 MiB`` → ``"1.5GiB"``; ``short``, for narrow
    tables: ``"1.5G"``, and whole units from 10 up (``"24G"``)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(value) < 1024 or unit == "EiB":
            digits = 0 if short and abs(value) >= 10 else 1
            text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
            return f"{text}{unit[0] if short else unit}"
        value /= 1024
    return f"{value}EiB"  # pragma: no cover
