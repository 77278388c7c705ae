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
    "online": "green", "running": "green", "cordoned": "yellow",
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


def plain(text: str) -> str:
    """``text`` without its colour codes."""
    if "\x1b[" not in text:
        return text
    kept, inside = [], False
    for char in text:
        if char == "\x1b":
            inside = True
        elif inside:
            inside = char != "m"
        else:
            kept.append(char)
    return "".join(kept)


class EscapeStripper:
    """A byte stream without its terminal escape sequences (CSI ``ESC [ ... final``, OSC
    ``ESC ] ... BEL``, and ``ESC`` intermediates final), fed in chunks: a sequence cut between two
    chunks is held until its end arrives."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        data, self.pending = self.pending + data, b""
        kept, index = bytearray(), 0
        while index < len(data):
            start = data.find(b"\x1b", index)
            if start < 0:
                kept += data[index:]
                break
            kept += data[index:start]
            end = self._end(data, start)
            if end is None:  # cut in the middle: wait for the rest
                self.pending = data[start:]
                break
            index = end
        return bytes(kept)

    @staticmethod
    def _end(data: bytes, start: int) -> int | None:
        """Where the sequence at ``start`` ends, or None when it goes past ``data``."""
        if start + 1 >= len(data):
            return None
        kind = data[start + 1]
        if kind == 0x5B:  # CSI: parameters, then a final byte in @..~
            for index in range(start + 2, len(data)):
                if 0x40 <= data[index] <= 0x7E:
                    return index + 1
            return None
        if kind == 0x5D:  # OSC: up to BEL or ESC backslash
            bell, st = data.find(b"\x07", start), data.find(b"\x1b\\", start + 2)
            ends = [e + 1 for e in (bell,) if e >= 0] + [e + 2 for e in (st,) if e >= 0]
            return min(ends) if ends else None
        index = start + 1  # ESC, intermediate bytes (ESC ( B: a character set), a final byte
        while index < len(data) and 0x20 <= data[index] <= 0x2F:
            index += 1
        return index + 1 if index < len(data) else None


def width(text: str) -> int:
    """The printed width of ``text``: without its colour codes."""
    return len(plain(text))


def state(value: str) -> str:
    colour = STATE_COLOURS.get(value)
    dot = "●" if value in ("online", "running") else "○"
    return style(f"{dot} {value}", fg=colour) if colour else value


def columns() -> int | None:
    """How wide the output may be: ``$COLUMNS``, else the terminal's width; None when
    stdout is not a terminal (a pipe gets whole tables; scripts want ``--json``)."""
    text = os.environ.get("COLUMNS", "")
    if text.isdigit() and int(text) > 0:
        return int(text)
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None


WIDE = False
"""``--wide``: every column, whatever the terminal's width."""


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
          optional: Sequence[str] = (), short: dict[str, str] | None = None,
          wrap: Sequence[str] = (), cut: Sequence[str] = ("name",)) -> str:
    """A table with rounded corners, as the original Virshle draws them, that fits the
    terminal. Where it is too wide: the ``optional`` columns are dropped, in that order
    (a last line says which, and that ``--wide`` shows them), until the table fits with
    the ``cut`` columns (names) cut to ``KEPT`` characters at most; then headers take
    their ``short`` names; then the cells wider than what fits are cut once (with ``…``),
    those of a ``wrap`` column wrapped onto more lines instead. ``--wide`` (``WIDE``)
    drops no column and cuts no cell shorter than ``KEPT``: a table that cannot fit so
    is drawn whole, wider than the terminal."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    limit = columns()
    hidden: list[str] = []
    if limit is not None:
        cells, hidden = _fit(cells, [] if WIDE else list(optional), short or {}, limit,
                             wrap, cut)
    lines_of = [[cell.split("\n") for cell in row] for row in cells]
    widths = [max(width(line) for row in lines_of for line in row[i])
              for i in range(len(cells[0]))]

    def line(left: str, mid: str, right: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + right

    def render(row: list[list[str]], bold: bool = False) -> list[str]:
        out = []
        for index in range(max(len(cell) for cell in row)):
            parts = []
            for cell, w in zip(row, widths):
                text = cell[index] if index < len(cell) else ""
                parts.append(" " + (style(text, bold=True) if bold else text)
                             + " " * (w - width(text)) + " ")
            out.append("│" + "│".join(parts) + "│")
        return out

    out = []
    if title:
        out.append(style(title, bold=True))
    out.append(line("╭", "┬", "╮"))
    out.extend(render(lines_of[0], bold=True))
    out.append(line("├", "┼", "┤"))
    for row in lines_of[1:]:
        out.extend(render(row))
    out.append(line("╰", "┴", "╯"))
    if hidden:
        plural = "s" if len(hidden) > 1 else ""
        footer = f"{len(hidden)} column{plural} hidden ({', '.join(hidden)}), --wide shows them"
        if limit is not None and len(footer) > limit:
            footer = f"{len(hidden)} column{plural} hidden, --wide shows them"
        out.append(footer)
    return "\n".join(out)


KEPT = 20
"""Characters a name keeps at least before a column is dropped instead."""


def _fit(cells: list[list[str]], optional: list[str], short: dict[str, str], limit: int,
         wrap: Sequence[str], cut: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """The cells made to fit ``limit`` columns, and the names of the columns dropped."""
    hidden = []
    while not _fits(cells, limit, cut) and optional:
        name = optional.pop(0)
        if name in cells[0]:
            index = cells[0].index(name)
            cells = [row[:index] + row[index + 1:] for row in cells]
            hidden.append(name)
    if not _fits(cells, limit, ()):
        cells[0] = [short.get(header, header) for header in cells[0]]
    cap = _cap(cells, limit)
    if WIDE and cap < KEPT:
        return cells, hidden  # everything was asked for: drawn whole
    cap = max(8, cap)
    wrapped = {cells[0].index(name) for name in wrap if name in cells[0]}
    return [[(_wrap(cell, cap) if i in wrapped else _cut(cell, cap)) if _width(cell) > cap
             else cell for i, cell in enumerate(row)] for row in cells], hidden


def _width(cell: str) -> int:
    """The printed width of a cell: its widest line."""
    return max(width(line) for line in cell.split("\n"))


def _fits(cells: list[list[str]], limit: int, cut: Sequence[str]) -> bool:
    """Whether the table fits ``limit`` columns with its ``cut`` columns at ``KEPT``."""
    sizes = [max(_width(row[i]) for row in cells) for i in range(len(cells[0]))]
    shrunk = [min(size, KEPT) if cells[0][i] in cut else size for i, size in enumerate(sizes)]
    return sum(shrunk) + 3 * len(sizes) + 1 <= limit


def _cap(cells: list[list[str]], limit: int) -> int:
    """The widest a cell may be for the table to fit ``limit`` columns (cutting only the
    cells wider than that); more than any cell when it fits as it is."""
    sizes = [max(_width(row[i]) for row in cells) for i in range(len(cells[0]))]
    room = limit - 3 * len(sizes) - 1
    if sum(sizes) <= room:
        return max(sizes) + 1
    cap = max(sizes)
    while cap > 1 and sum(min(size, cap) for size in sizes) > room:
        cap -= 1
    return cap


def _wrap(cell: str, size: int) -> str:
    """``cell`` on lines of at most ``size`` characters: broken at spaces, and a long word
    (a path) after a ``/`` where it can be."""
    if "\n" in cell:
        return "\n".join(_wrap(line, size) for line in cell.split("\n"))
    text, lines = plain(cell), []
    for word in text.split(" "):
        while len(word) > size:
            cut = word.rfind("/", 0, size) + 1 or size
            lines.append(word[:cut])
            word = word[cut:]
        if lines and len(lines[-1]) + 1 + len(word) <= size:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def _cut(cell: str, size: int) -> str:
    if "\n" in cell:
        return "\n".join(_cut(line, size) for line in cell.split("\n"))
    if width(cell) <= size:
        return cell
    return plain(cell)[:size - 1] + "…"  # a coloured cell (a state) loses its colour


def bar(percent: float | None, scale: float = 100.0, good: float = 80, warn: float = 95) -> str:
    """``[####      ] 24.0%`` with ``--wide``, ``24.0%`` on a terminal of 160 columns or
    more (or a pipe), ``24%`` on a narrower one."""
    if percent is None:
        return "-"
    colour = "green" if percent < good else "yellow" if percent < warn else "red"
    if not WIDE and (columns() or 160) < 160:
        return style(f"{percent:.0f}%", fg=colour)  # narrow: whole percents
    text = style(f"{percent:.1f}%", fg=colour)
    if not WIDE:
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


def wants_json(args: list[str]) -> bool:
    """``--json`` among a command's own words (not after ``--``)."""
    words = args[:args.index("--")] if "--" in args else args
    return "--json" in words


def report_error(code: str, message: str, hint: str, node: str | None, as_json: bool) -> None:
    """A failure, said once: one JSON document on stdout for ``--json`` (scripts read
    stdout, and the exit status still says it failed), else a line and its hint on stderr."""
    if as_json:
        import json

        sys.stdout.write(json.dumps({"error": code, "message": message, "hint": hint,
                                     "node": node}) + "\n")
        sys.stdout.flush()
        return
    echo(f"Error: {message}", err=True)
    if hint:
        echo(f"  Hint: {hint}", err=True)


def report_failures(failures: list) -> None:
    """The nodes a fan-out could not reach, a line each, and each different hint once
    (five nodes down for the same reason give one hint)."""
    hints: list[str] = []
    for name, error in failures:
        echo(f"Error: {about(name, error.message)}", err=True)
        hint = getattr(error, "hint", "")
        if hint and hint not in hints:
            hints.append(hint)
    for hint in hints:
        echo(f"  Hint: {hint}", err=True)


def about(node: str, message: str) -> str:
    """``node NAME: message``, the node named once: a message that names it already
    ("node 'remote_2': ...") is not prefixed again."""
    for named in (f"node {node!r}: ", f"node {node}: "):
        if message.startswith(named):
            return f"node {node}: {message[len(named):]}"
    return f"node {node}: {message}"
