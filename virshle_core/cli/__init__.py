"""The ``virshle`` (and ``v``) command line: ``main`` is its entry point.

The plain forms of ``vm ls`` and ``node ls`` are answered by the fast path
(``cli/fast.py``) without importing click, pluggy or attrs; everything else
goes to the click application (``cli/app.py``).
"""

from __future__ import annotations

import sys


def _normalise(argv: list[str]) -> list[str]:
    """The command line as click reads it: global options may be written anywhere.

    ``--config PATH`` after the subcommand goes to the front (``node ls --config X``, as
    ``-v`` and ``-q`` already work there), ``--json`` before it goes after it
    (``virshle --json vm ls``); nothing after ``--`` moves. The seed's ``node ls -all``
    means ``--all`` (click would read ``-a -l -l``).
    """
    args = ["--all" if arg == "-all" else arg for arg in argv]
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    front, rest, json_first = [], [], False
    seen_command = False
    words = iter(head)
    for word in words:
        if word == "--config" or word.startswith("--config="):
            front += [word] if "=" in word else [word, next(words, "")]
        elif word == "--json" and not seen_command:
            json_first = True
        else:
            seen_command = seen_command or not word.startswith("-")
            rest.append(word)
    return front + rest + (["--json"] if json_first else []) + tail


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``virshle`` and ``v``: exit 0 ok, 1 failed, 2 bad usage or config."""
    args = _normalise(list(sys.argv[1:] if argv is None else argv))
    from .fast import run as run_fast

    try:
        code = run_fast(args)  # vm ls and node ls, answered without click when they can be
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    if code is not None:
        sys.exit(code)
    import click

    import os

    from ..errors import ConfigError, VirshleError
    from .app import core_command, make_cli
    from .render import report_error, wants_json

    # `v` is `virshle` by another name; its shell completion asks through _V_COMPLETE
    prog = "v" if os.path.basename(sys.argv[0]) == "v" else "virshle"

    try:
        # a core command needs no plugin loaded, unless a plugin added a subcommand to its
        # group: click's "No such command" then retries with them
        lean = core_command(args)
        try:
            code = make_cli(with_plugins=not lean).main(args=args, prog_name=prog,
                                                       standalone_mode=False)
        except click.UsageError as exc:
            if not lean or "No such command" not in exc.message:
                raise
            code = make_cli().main(args=args, prog_name=prog, standalone_mode=False)
        if isinstance(code, int):  # click hands back ctx.exit(N) / Exit(N) as a value here
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        from ..errors import shorten

        exc.message = shorten(exc.message)  # click quotes what it was given
        if wants_json(args):
            report_error("bad_usage", exc.format_message(), "", None, True)
        else:
            exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        report_error(exc.code, exc.message, exc.hint, None, wants_json(args))
        sys.exit(2)
    except VirshleError as exc:
        report_error(exc.code, exc.message, exc.hint, exc.node, wants_json(args))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(0)


def __getattr__(name: str):
    # The click application's names, for plugins and tests (``from virshle_core.cli import
    # make_cli``), imported only when asked for: ``main`` alone must stay light.
    if name in ("make_cli", "Settings", "VirshleGroup", "verbosity_options", "CONTEXT_SETTINGS"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
