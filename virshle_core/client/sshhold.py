"""SSH connections held between commands, as OpenSSH's ControlMaster and ControlPersist.

The first command that reaches an ``ssh://`` node starts a small process of the user's
own (``python -m virshle_core.client.sshholder``) that logs in once and then serves a unix
socket (mode 0600, in a 0700 directory: ``$XDG_RUNTIME_DIR/virshle``, else
``~/.cache/virshle``). The next commands connect to that socket, name the remote
daemon's socket on one line, and get a byte stream to it through a new channel of the
held connection: no handshake, and no asyncssh to import. The holder ends after
``[[node]] persist`` seconds (60 by default; 0: nothing is held) with no stream open,
when its SSH connection ends, or when its socket is taken from it.

The socket is named by the user, host, port and route (as ``~/.ssh/config`` gives them:
``sshconfig.py``), and by the host keys the user's known-hosts files trust for that host:
a changed key means another name, so a
holder never serves a connection verified against a key the user no longer trusts. A
holder serves only its own user (``SO_PEERCRED``). A socket that does not answer is
stale: it is removed and the command connects afresh, as it does whenever there is no
holder, so the user never sees the difference but in time.

This module imports nothing heavy: the warm path (``connect``) is a few system calls.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from pathlib import Path

from .sshconfig import Endpoint, endpoint

READY_TIMEOUT = 5.0
"""Seconds a command waits for the holder to open its channel."""


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    directory = Path(base) / "virshle" if base and os.access(base, os.W_OK) \
        else Path(os.path.expanduser("~")) / ".cache" / "virshle"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        os.chmod(directory, 0o700)
    return directory


def trusted_keys(host: str, port: int, files: list[str] | None = None) -> list[str]:
    """The keys the known-hosts ``files`` (``~/.ssh/known_hosts``) trust for ``host:port``
    (hashed names included)."""
    pattern = host if port == 22 else f"[{host}]:{port}"
    found: list[str] = []
    for name in files or [os.path.expanduser("~/.ssh/known_hosts")]:
        try:
            lines = Path(name).read_text().splitlines()
        except OSError:
            continue
        keys = _trusted_in(lines, pattern)
        if keys is None:
            return []  # @revoked, @cert-authority: never held, the direct path judges
        found += keys
    return sorted(set(found))


def _trusted_in(lines: list[str], pattern: str) -> list[str] | None:
    import base64
    import fnmatch
    import hmac

    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3:
            continue
        names, key = fields[0], f"{fields[1]} {fields[2]}"
        for name in names.split(","):
            if name.startswith("|1|"):
                salt, digest = (base64.b64decode(part) for part in name[3:].split("|", 1))
                matched = hmac.new(salt, pattern.encode(), "sha1").digest() == digest
            else:  # "[host]:port" is a name, not a character class
                matched = name == pattern or (("*" in name or "?" in name) and not
                                              name.startswith("!") and fnmatch.fnmatchcase(
                                                  pattern, name.replace("[", "[[]")))
            if matched and marker is not None:
                return None
            if matched:
                found.append(key)
    return found


def socket_path(target: Endpoint) -> Path | None:
    """Where the holder for ``target`` listens; None when no key is trusted for the host
    (the direct path then says what is wrong with it)."""
    keys = trusted_keys(target.key_host, target.port, target.known_hosts)
    if not keys:
        return None
    # another HOME (its known_hosts), another route (ProxyJump): another holder
    name = hashlib.sha256("\n".join([
        target.user, target.host, str(target.port), target.jump or "", *target.known_hosts,
        *keys]).encode()).hexdigest()[:24]
    path = runtime_dir() / f"ssh-{name}.sock"
    if len(str(path)) > MAX_SOCKET_PATH:  # a deep home: a directory of the user's in /tmp
        path = _short_dir() / f"ssh-{name}.sock"
    return path


MAX_SOCKET_PATH = 100
"""A unix socket's path is at most 107 bytes; the holder's temporary name is a little
longer than the socket's."""


def _short_dir() -> Path:
    import tempfile

    directory = Path(tempfile.gettempdir()) / f"virshle-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    info = directory.lstat()
    if info.st_uid != os.getuid() or not os.path.isdir(directory) or directory.is_symlink():
        raise PermissionError(f"{directory} is not yours")
    if info.st_mode & 0o077:
        os.chmod(directory, 0o700)
    return directory


def connect(target: Endpoint, timeout: float) -> socket.socket | None:
    """A stream to the remote socket ``target.path`` through a held connection, or None when
    there is no holder (or it does not answer: then its socket is removed)."""
    held = socket_path(target)
    if held is None or not held.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(READY_TIMEOUT)
    try:
        sock.connect(str(held))
        sock.sendall(target.path.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            data = sock.recv(1)  # byte by byte: what follows the line is the daemon's
            if not data:
                raise ConnectionError("the holder closed the connection")
            answer += data
    except OSError:
        sock.close()
        _remove_stale(held)
        return None
    status, _, message = answer.decode(errors="replace").strip().partition(" ")
    if status != "ok":
        sock.close()
        from ..errors import NodeUnavailable

        kind, _, reason = message.partition(" ")
        raise NodeUnavailable(reason, "Start `virshle node serve` on that host, or fix the "
                              "socket path in the URL.", status=kind or "offline")
    sock.settimeout(timeout)
    return sock


def _remove_stale(held: Path) -> None:
    try:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        probe.connect(str(held))
        probe.close()  # it answers: it was busy, not stale
    except OSError:
        held.unlink(missing_ok=True)


def spawn(node: str, url: str, persist: float) -> None:
    """Start a holder for the node at ``url`` in the background (it logs in by itself)."""
    import subprocess

    held = socket_path(endpoint(url))
    if held is None or persist <= 0 or held.exists() or not _claim(held.with_suffix(".lock")):
        return
    with open(held.with_suffix(".log"), "ab", buffering=0) as log:  # why a holder ended
        os.chmod(log.name, 0o600)
        subprocess.Popen([sys.executable, "-m", "virshle_core.client.sshholder", node, url,
                          str(held), str(persist)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                         start_new_session=True, close_fds=True)


STARTING = 15.0
"""Seconds a holder may take to log in before another command starts one again."""


def _claim(lock: Path) -> bool:
    """Whether this command starts the holder: one at a time, while the first logs in (the
    commands that come meanwhile connect by themselves)."""
    import time

    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            if time.time() - lock.stat().st_mtime < STARTING:
                return False
            lock.unlink()  # a holder that never came up: try again
        except FileNotFoundError:
            pass
        return _claim(lock) if not lock.exists() else False
    os.close(fd)
    return True
