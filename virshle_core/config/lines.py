"""Where a key is written in a TOML text: the line an error points at."""

from __future__ import annotations

import re




# --- where a key is written -------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\".]+)\s*=")
_INDEX = re.compile(r"\[(\d+)\]")


def written_at(label: str, text: str, key: str) -> str:
    """``FILE:LINE`` for ``key``, or ``FILE`` alone when the key is not written (a default)."""
    line = locate(text, key)
    return f"{label}:{line}" if line else label


def locate(text: str, key_path: str) -> int | None:
    """The line (1-based) where ``key_path`` (``template.vm[0].vcpu``) is written.

    Falls back to the line of the closest enclosing table; None when the key
    is not in the text at all (a built-in default).
    """
    array_counts: dict[str, int] = {}
    current = ""
    positions: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            is_array = header.group(1) == "[["
            names = [part.strip().strip('"') for part in header.group(2).split(".")]
            path = ""
            for i, name in enumerate(names):
                path = f"{path}.{name}" if path else name
                last = i == len(names) - 1
                if last and is_array:
                    array_counts[path] = array_counts.get(path, -1) + 1
                    positions.setdefault(path, number)
                    path = f"{path}[{array_counts[path]}]"
                elif path in array_counts:
                    path = f"{path}[{array_counts[path]}]"
                positions.setdefault(path, number)
            current = path
            continue
        key = _KEY.match(line)
        if key:
            name = key.group(1).strip().strip('"')
            full = f"{current}.{name}" if current else name
            positions.setdefault(full, number)
    probe = key_path
    while probe:
        if probe in positions:
            return positions[probe]
        # template.vm[0].vcpu -> template.vm[0] -> template.vm ...
        if probe.endswith("]"):
            probe = probe[: probe.rindex("[")]
        elif "." in probe:
            probe = probe.rsplit(".", 1)[0]
        else:
            break
    return None
