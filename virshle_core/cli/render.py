"""Output for people (rounded tables, colours) and for scripts (one JSON document)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from typing import Any, Sequence

import click

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

STATE_COLOURS = {
    "online": "green", "running": "green",
    "created": "blue", "paused": "yellow", "shutdown": "white",
    "offline": "red", "unreachable": "red", "auth_error": "red",
    "socket_not_found": "red", "crashed": "red",
}


def width(text: str) -> int:
    return len(_ANSI.sub("", text))


def state(value: str) -> str:
    colour = STATE_COLOURS.get(value)
    dot = "●" if value in ("online", "running") else "○"
    return click.style(f"{dot} {value}", fg=colour) if colour else value


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A table with rounded corners, as the original Virshle draws them."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]

    def line(left: str, mid: str, right: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + right

    def render(row: list[str], bold: bool = False) -> str:
        parts = []
        for cell, w in zip(row, widths):
            text = click.style(cell, bold=True) if bold else cell
            parts.append(" " + text + " " * (w - width(cell)) + " ")
        return "│" + "│".join(parts) + "│"

    out = []
    if title:
        out.append(click.style(title, bold=True))
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
    colour = "green" if percent < good else "yellow" if percent < warn else "red"
    text = click.style(f"{percent:.1f}%", fg=colour)
    columns = shutil.get_terminal_size((80, 24)).columns
    if columns < 100:
        return text
    size = 10
    filled = min(size, int(round(size * percent / scale))) if scale else 0
    return f"[{'#' * filled}{' ' * (size - filled)}] {text}"


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout, and nothing else there."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def warn(message: str) -> None:
    click.echo(click.style("Warning: ", fg="yellow") + message, err=True)
