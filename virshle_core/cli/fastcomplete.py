"""Tab completion of the VM a command names, on the fast path (``fast.py``): without
click, from the nodes the configuration's view lists.

The shells' scripts are click's (``virshle completion bash|zsh|fish``): they run
``virshle`` with ``_VIRSHLE_COMPLETE`` (``_V_COMPLETE``) set and the words typed in
``COMP_WORDS``. Loading click and every command to answer "which VMs are there" cost
about 300 ms a Tab; here it is a listing. This answers only the word that names a VM of
a ``vm`` command (its ``NAME``, or the value of ``--name``, ``--id``, ``--uuid``), in
click's output format for each shell; any other word is click's to complete.
"""

from __future__ import annotations

import os

SHELLS = ("bash", "zsh", "fish")
NAMING = ("info", "logs", "attach", "ssh")
"""The ``vm`` commands that name a VM and are not declared verbs (``virshle_core.verbs``)."""
FIELDS = {"--name": "name", "--id": "id", "--uuid": "uuid"}
TIMEOUT = 1.0
"""Seconds one node may take to answer (as ``completion.py``'s)."""


def request() -> tuple[str, list[str], str] | None:
    """The shell, the words typed before the cursor and the word under it; None when no
    shell asks."""
    mode = os.environ.get("_VIRSHLE_COMPLETE") or os.environ.get("_V_COMPLETE") or ""
    shell = mode.removesuffix("_complete")
    if shell not in SHELLS or "COMP_WORDS" not in os.environ:
        return None
    import shlex

    try:
        words = shlex.split(os.environ["COMP_WORDS"])
    except ValueError:
        return None
    if shell == "fish":  # the word under the cursor is COMP_CWORD itself, and in COMP_WORDS
        incomplete = os.environ.get("COMP_CWORD", "")
        args = words[1:]
        if incomplete and args and args[-1] == incomplete:
            args.pop()
        return shell, args, incomplete
    try:
        cword = int(os.environ.get("COMP_CWORD", ""))
    except ValueError:
        return None
    return shell, words[1:cword], words[cword] if cword < len(words) else ""


def wanted(args: list[str], incomplete: str, naming: set[str]) -> tuple[str, str | None] | None:
    """Which field of the VMs the word completes (``name``, ``id``, ``uuid``) and the
    ``--node`` given, when it names a VM of one of the ``naming`` commands; else None."""
    words = iter(args)
    command = []
    for word in words:  # the options before the command (-v, --config PATH)
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            command = [word, next(words, "")]
            break
    if command[:1] != ["vm"] or command[1] not in naming or incomplete.startswith("-"):
        return None
    rest = list(words)
    if "--" in rest:
        return None  # a command for the guest (vm ssh NAME -- ...)
    node = rest[rest.index("--node") + 1] if "--node" in rest[:-1] else None
    previous = rest[-1] if rest else ""
    if previous in FIELDS:
        return FIELDS[previous], node
    if previous.startswith("-") and previous not in ("--all", "--json", "--force", "--yes",
                                                     "-y", "--live", "--refresh"):
        return None  # the value of another option: click knows which
    return "name", node


def answer(shell: str, field: str, incomplete: str, clients: list) -> int:
    """Print the VMs' ``field`` values that start with ``incomplete``, as ``shell`` reads
    them; a node that does not answer in time offers nothing."""
    import sys

    from ..client import fan_out

    for client in clients:
        client.timeout = TIMEOUT
    found = set()
    for _, vms, error in fan_out(clients, lambda client: client.vms()):
        for vm in vms if error is None else ():
            found.add(str(getattr(vm, field)))
    values = sorted(v for v in found if v.startswith(incomplete))
    if shell == "zsh":
        out = "\n".join(f"plain\n{value}\n_" for value in values)
    else:
        out = "\n".join(f"plain,{value}" for value in values)
    sys.stdout.write(out + ("\n" if out else ""))
    return 0
