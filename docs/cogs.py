"""What cog writes into the docs, from the code it documents (``make docs``; a test runs
``cog --check``): the hook reference from the hookspecs' docstrings, the error codes from
``virshle_core/wire/errorcodes.py``, the VM document from ``virshle_core/wire/api.py``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sections(path: Path, starts: str) -> list[tuple[str, list[str]]]:
    """The names defined in ``path`` under each of its ``# ---`` banner comments (hooks) or
    ``# plain`` comments (enum members), in order."""
    sections: list[tuple[str, list[str]]] = []
    for line in path.read_text().splitlines():
        comment = re.match(r"\s*# (?!-)(.+)", line)
        if comment:
            sections.append((comment.group(1).split(":")[0].strip(), []))
            continue
        name = re.match(starts, line)
        if name and sections:
            sections[-1][1].append(name.group(1))
    return [(title, names) for title, names in sections if names]


def _rest_to_markdown(doc: str) -> str:
    """A hookspec docstring as Markdown: ``literals`` kept, ``:param x:`` as a list,
    ``Example::`` blocks as Python code."""
    # "Stops at first non-None result." is said by the kind line above each hook
    lines = [line for line in inspect.cleandoc(doc).splitlines()
             if line != "Stops at first non-None result."]
    out: list[str] = []
    in_code = False
    for line in lines:
        if in_code:
            if line.startswith("    ") or not line.strip():
                if line.strip() or out[-1] != "```python":
                    out.append(line[4:])
                continue
            out.append("```")
            in_code = False
        if line.strip() == "Example::":
            out += ["Example:", "", "```python"]
            in_code = True
            continue
        line = line.replace("``", "`")
        param = re.match(r":param (\w+):\s*(.*)", line)
        returns = re.match(r":returns:\s*(.*)", line)
        if param:
            out.append(f"- `{param.group(1)}`: {param.group(2)}")
        elif returns:
            out.append(f"- returns: {returns.group(1)}")
        elif line.startswith("    ") and out and out[-1].startswith("- "):
            out[-1] += " " + line.strip()  # a parameter's text goes on
        else:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if in_code:
        out.append("```")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def hook_reference() -> str:
    """Every hook: its section, signature, kind (owner or merged) and docstring."""
    from virshle_core import hookspecs

    parts = []
    for title, module in hookspecs.SECTIONS:
        parts.append(f"### {title}\n")
        functions = [value for name, value in vars(module).items() if name.startswith("virshle_")]
        for function in functions:  # in the order they are written
            name = function.__name__
            options = getattr(function, "virshle_spec", {}) or {}
            signature = str(inspect.signature(function)).replace("'", "")
            kind = ("*Owner hook (firstresult): the first implementation that answers "
                    "(not None) decides.*" if options.get("firstresult")
                    else "*Every implementation is called.*")
            parts.append(f"#### {name}\n\n```python\n{name}{signature}\n```\n\n{kind}\n\n"
                         f"{_rest_to_markdown(function.__doc__ or '')}\n")
    return "\n".join(parts)


def error_codes() -> str:
    """The catalogue of error codes, by kind."""
    from virshle_core.wire.errorcodes import ErrorCode

    rows = ["| kind | codes |", "|---|---|"]
    for title, names in _sections(ROOT / "virshle_core" / "wire" / "errorcodes.py", r"    ([A-Z0-9_]+) = "):
        rows.append(f"| {title} | " + ", ".join(f"`{ErrorCode[n].value}`" for n in names) + " |")
    return "\n".join(rows) + "\n"


def vm_fields() -> str:
    """The fields of the VM document (``api.Vm``), its disks and NICs."""
    from virshle_core.wire import api

    rows = ["| document | field | type |", "|---|---|---|"]
    for cls in (api.Vm, api.Disk, api.Net):
        for field in cls.__fields__:
            default = "" if field.required else " (optional)"
            rows.append(f"| {cls.__name__} | `{field.name}` | `{field.type}`{default} |")
    return "\n".join(rows) + "\n"


def event_table() -> str:
    """Each event and the keyword data its receivers get (its fields but ``event`` and
    ``node``: the sender is the node's name)."""
    from virshle_core.wire import api

    rows = ["| event | extra keyword data |", "|---|---|"]
    for name, cls in api.EVENTS.items():
        if name == "hello":
            continue  # the stream's first line, not a signal
        fields = [f"`{f.name}`" for f in cls.__fields__ if f.name not in ("event", "node")]
        rows.append(f"| `{name}` | {', '.join(fields)} |")
    return "\n".join(rows) + "\n"


def out(text: str) -> None:
    import cog

    cog.out("\n" + text)


if __name__ == "__main__":  # a look at what cog would write
    print(hook_reference())


def verb_routes() -> str:
    """The routes of the declared verbs (``virshle_core.verbs``: the core's, and those of the
    plugins installed), a table row each."""
    from virshle_core.verbs import every

    rows = ["| route | what it does |", "|---|---|"]
    for verb in every():
        text = verb.summary
        if verb.request is not None and hasattr(verb.request, "__fields__"):
            fields = ", ".join(f'"{f.name}"' for f in verb.request.__fields__)
            text += f" Body: `{{{fields}}}`" + (" (optional)." if not any(
                f.required for f in verb.request.__fields__) else ".")
        if verb.notes:
            text += f" {verb.notes}"
        if verb.event:
            text += f" Announces `{verb.event}`."
        if verb.plugin != "core":
            text += f" (plugin {verb.plugin})"
        rows.append(f"| `{verb.method} /api/v1{verb.path}` | {text} |")
    return "\n".join(rows)
