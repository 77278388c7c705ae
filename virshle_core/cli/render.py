"""Output for people (rounded tables, colours) and for scripts (one JSON document).

Nothing here imports click: the fast path of ``vm ls`` and ``node ls`` prints
with it too. Colours are ANSI codes, written only to a terminal (and never
with ``NO_COLOR`` set), as ``click.echo`` would strip them anyway.
"""

from __future__ import annotations

import os
import sys
TYPE_CHECKING = False  # typing itself is an import the CLI's start-up avoids

if TYPE_CHECKING:
    from typing import Any, Sequence

STATE_COLOURS = {
    "online": "green", "running": "green",
    "created": "blue", "paused": "yellow", "shutdown": "white",
    "offline": "red", "unreachable": "red", "auth_error": "red",
    "socket_not_found": "red", "crashed": "red",
}
_CODES = {"red": 31, "green": 32, "yellow": 33, "blue": 34, "white": 37}
_colour: dict[int, bool] = {}


def colourful(stream=None) -> bool:
    """Whether ``stream`` (stdout) takes colours: a terminal, and no ``NO_COLOR``."""
    stream = stream or sys.stdout
    key = id(stream)
    if key not in _colour:
        try:
            _colour[key] = stream.isatty() and not os.environ.get("NO_COLOR")
        except (AttributeError, ValueError):
            _colour[key] = False
    return _colour[key]


def style(text: str, fg: str | None = None, bold: bool = False, stream=None) -> str:
    """``text`` in colour and/or bold, when ``stream`` shows colours."""
    if not colourful(stream) or not (fg or bold):
        return text
    codes = ([str(_CODES[fg])] if fg in _CODES else []) + (["1"] if bold else [])
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def width(text: str) -> int:
    """The printed width of ``text``: without its colour codes."""
    if "\x1b[" not in text:
        return len(text)
    count, inside = 0, False
    for char in text:
        if char == "\x1b":
            inside = True
        elif inside:
            inside = char != "m"
        else:
            count += 1
    return count


def state(value: str) -> str:
    colour = STATE_COLOURS.get(value)
    dot = "●" if value in ("online", "running") else "○"
    return style(f"{dot} {value}", fg=colour) if colour else value


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A table with rounded corners, as the original Virshle draws them."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]

    def line(left: str, mid: str, right: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + right

    def render(row: list[str], bold: bool = False) -> str:
        parts = []
        for cell, w in zip(row, widths):
            text = style(cell, bold=True) if bold else cell
            parts.append(" " + text + " " * (w - width(cell)) + " ")
        return "│" + "│".join(parts) + "│"

    out = []
    if title:
        out.append(style(title, bold=True))
    out.append(line("╭", "┬", "╮"))
    out.append(render(cells[0], bold=True))
    out.append(line("├", "┼", "┤"))
    out.extend(render(row) for row in cells[1:])
    out.append(line("╰", "┴", "╯"))
    return "\n".join(out)


def bar(percent: float | None, scale: float = 100.0, good: float = 80, warn: float = 95) -> str:
    """``[####      ] 24.0%`` on a wide terminal, ``24.0%`` on a narrow one."""
    if percent is None:
        return "-"
    import shutil

    colour = "green" if percent < good else "yellow" if percent < warn else "red"
    text = style(f"{percent:.1f}%", fg=colour)
    columns = shutil.get_terminal_size((80, 24)).columns
    if columns < 100:
        return text
    size = 10
    filled = min(size, int(round(size * percent / scale))) if scale else 0
    return f"[{'#' * filled}{' ' * (size - filled)}] {text}"


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout, and nothing else there: indented for a person at a
    terminal, compact for a program (json's C encoder only writes compact JSON)."""
    if colourful(sys.stdout) or sys.stdout.isatty():
        import json

        from ..client.jsonlite import _default

        sys.stdout.write(json.dumps(document, indent=2, default=_default) + "\n")
    else:
        from ..client.jsonlite import dumps

        sys.stdout.write(dumps(document) + "\n")


def echo(message: str, err: bool = False) -> None:
    """A line on stdout (or stderr)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")


def warn(message: str) -> None:
    echo(style("Warning: ", fg="yellow", stream=sys.stderr) + message, err=True)
