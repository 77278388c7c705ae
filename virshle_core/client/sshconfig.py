"""An ``ssh://`` URL read with the user's ``~/.ssh/config``, as ssh(1) reads a host name.

``ssh://anon@deku:22/var/lib/virshle/virshle.sock`` may name an alias: ``Host deku`` in
``~/.ssh/config`` says where it really is (``HostName``, ``Port``, ``User``), through what
(``ProxyJump``), with which keys (``IdentityFile``, ``CertificateFile``) and against which
host keys (``UserKnownHostsFile``, ``HostKeyAlias``). As with ``ssh -l anon -p 22 deku``,
a user or port written in the URL wins over the file's.

The connection itself is asyncssh's, which reads the same file (``Match`` blocks too).
This module reads only what a command needs before it knows whether asyncssh is needed at
all: where the host is and which host keys the user trusts for it, which name the held
connection (``sshhold.py``) and the messages. It knows ``Host`` blocks (patterns, ``!``
negations), ``Include`` and the options above; a ``Match`` block is skipped here, so a
host that only a ``Match`` block configures is never held, but it is still reached.
"""

from __future__ import annotations

import os
from pathlib import Path

READ = ("HostName", "User", "Port", "ProxyJump", "UserKnownHostsFile", "HostKeyAlias")
"""The options this module reads (asyncssh also uses IdentityFile and CertificateFile)."""


class Endpoint:
    """Where an ``ssh://`` URL leads, with ``~/.ssh/config`` applied."""

    __slots__ = ("alias", "user", "host", "port", "path", "known_hosts", "key_alias", "jump",
                 "url_user", "url_port")

    def __init__(self, alias: str, path: str, url_user: str | None, url_port: int | None,
                 options: dict[str, list[str]]):
        import getpass

        self.alias, self.path = alias, path
        self.url_user, self.url_port = url_user, url_port
        first = {name: values[0] for name, values in options.items() if values}
        self.host = first.get("hostname", alias).replace("%h", alias)
        self.user = url_user or first.get("user") or getpass.getuser()
        self.port = url_port or int(first.get("port", 22))
        self.jump = first.get("proxyjump") if first.get("proxyjump", "none") != "none" else None
        self.key_alias = first.get("hostkeyalias")
        home = os.path.expanduser("~")
        files = options.get("userknownhostsfile") or ["~/.ssh/known_hosts"]
        self.known_hosts = [os.path.expanduser(name.replace("%d", home)) for name in files
                            if name != "none"]

    @property
    def key_host(self) -> str:
        """The name the host's keys are listed under in known_hosts."""
        return self.key_alias or self.host

    def __str__(self) -> str:
        where = f"{self.user}@{self.host}" + (f":{self.port}" if self.port != 22 else "")
        if self.host != self.alias:
            where = f"{self.alias} ({where}" + (f" via {self.jump})" if self.jump else ")")
        elif self.jump:
            where += f" via {self.jump}"
        return where


def endpoint(url: str) -> Endpoint:
    """The endpoint of ``ssh://[user@]host[:port]/path``, with ``~/.ssh/config`` applied."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    alias = parts.hostname or "localhost"
    return Endpoint(alias, parts.path, parts.username, parts.port, host_options(alias))


def host_options(alias: str, path: Path | None = None) -> dict[str, list[str]]:
    """The options of READ that ``Host`` blocks give ``alias``: for each, the values of the
    first line that sets it (ssh's rule: the first obtained value wins)."""
    path = path or Path(os.path.expanduser("~")) / ".ssh" / "config"
    found: dict[str, list[str]] = {}
    wanted = {name.lower() for name in READ}
    _read(path, alias, wanted, found, depth=0)
    return found


def _option(line: str) -> tuple[str, list[str]] | None:
    """``Key value...``, ``Key=value`` or ``Key = value``: the key in lower case, and the
    values (double quotes group words). Without ``re`` or ``shlex``: this runs on the
    fast path of every command that reaches an ``ssh://`` node."""
    key, _, rest = line.replace("\t", " ").partition(" ")
    if "=" in key:
        key, _, more = key.partition("=")
        rest = more + " " + rest
    rest = rest.strip()
    if rest.startswith("="):
        rest = rest[1:].strip()
    values, quoted = [], rest.split('"')
    for index, part in enumerate(quoted):
        values += [part] if index % 2 else part.split()
    return (key.lower(), values) if key else None


def _read(path: Path, alias: str, wanted: set, found: dict, depth: int) -> None:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return
    matching = True  # the lines before the first Host apply to every host
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        option = _option(line)
        if option is None:
            continue
        keyword, values = option
        if keyword == "host":
            matching = _matches(alias, values)
        elif keyword == "match":
            matching = False  # asyncssh's to judge: see the module's docstring
        elif not matching:
            continue
        elif keyword == "include" and depth < 16:
            _include(values, alias, wanted, found, depth)
        elif keyword in wanted and keyword not in found and values:
            found[keyword] = values


def _include(values: list[str], alias: str, wanted: set, found: dict, depth: int) -> None:
    import glob

    for value in values:
        pattern = os.path.expanduser(value)
        if not os.path.isabs(pattern):
            pattern = os.path.join(os.path.expanduser("~"), ".ssh", pattern)
        for name in sorted(glob.glob(pattern)):
            _read(Path(name), alias, wanted, found, depth + 1)


def _matches(alias: str, patterns: list[str]) -> bool:
    """ssh_config's ``Host`` rule: some pattern matches, and no negated one does."""
    import fnmatch

    hit = False
    for pattern in (p for value in patterns for p in value.split(",") if p):
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(alias, pattern.lstrip("!").replace("[", "[[]")):
            if negated:
                return False
            hit = True
    return hit
