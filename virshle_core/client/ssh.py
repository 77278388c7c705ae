"""Reaching a node over SSH (asyncssh), as if its unix socket were local.

``ssh://user@host:port/var/lib/virshle/virshle.sock``: ``host`` may be an
alias of ``~/.ssh/config``, which asyncssh reads as ssh(1) does (``sshconfig.py``
says what the URL's user and port override). The client logs in with the keys
of the running ssh-agent (``SSH_AUTH_SOCK``) and the identities the config or
the defaults name, verifies the host key against ``~/.ssh/known_hosts`` (or the
config's ``UserKnownHostsFile``: an unknown or changed key is refused, with its
fingerprint and the line to add: there is no silent accept), and opens a
``direct-streamlocal`` channel
to the remote daemon's socket for each request. The remote daemon needs
nothing but its usual socket and an sshd.

The rest of the client is synchronous and speaks HTTP over a socket, so
each channel is bridged to one end of a ``socketpair()``; an asyncio loop
in one background thread runs every SSH connection of this process. There
is one connection per node per process, reused by every request.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import Any

from ..errors import NodeUnavailable

CONNECT_TIMEOUT = 3.0


def _import_asyncssh() -> None:
    """Import asyncssh without the ten CryptographyDeprecationWarning lines (DSA) its
    import prints with recent cryptography: ignored during that import only, so the
    user's own warnings, and asyncssh's later ones, still show."""
    import warnings

    try:
        from cryptography.utils import CryptographyDeprecationWarning
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        import asyncssh  # noqa: F401


_import_asyncssh()

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()
_connections: dict[tuple, Any] = {}
_connect_locks: dict[tuple, asyncio.Lock] = {}


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="virshle-ssh", daemon=True).start()
        return _loop


from .sshconfig import Endpoint, endpoint  # noqa: E402


def _host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


async def _host_key_problem(node: str, target: Endpoint) -> str | None:
    """Say why the host key was refused: revoked, changed, of a type we do not know, or unknown.

    None when known_hosts has nothing against this host (the failure is elsewhere).
    """
    import asyncssh

    host, port = target.key_host, target.port
    pattern = _host_pattern(host, port)
    files = [name for name in target.known_hosts if os.path.exists(name)]
    path = files[0] if files else (target.known_hosts or ["~/.ssh/known_hosts"])[0]
    trusted, revoked = [], []
    for name in files:
        try:
            found, _, cut, _, _, _, _ = asyncssh.match_known_hosts(
                asyncssh.read_known_hosts(name), host, None, port)
        except Exception:
            continue
        trusted, revoked = trusted + list(found), revoked + list(cut)
    key = await _server_key(target)
    if key is None:  # not reached at all: the caller says so
        return None
    line = f"{pattern} {key.export_public_key().decode().strip()}"
    fingerprint = key.get_fingerprint()
    blob = key.public_data
    if any(k.public_data == blob for k in revoked):
        return (f"node {node!r}: the host key of {pattern} ({fingerprint}) is marked @revoked in "
                f"{path}; refusing to connect. If the host has been given a new key, get it from "
                "its administrator and add it; never remove the @revoked line to get past this")
    if any(k.public_data == blob for k in trusted):
        return None  # the key is known and trusted: the failure was not about it
    listed = sorted({k.get_algorithm() for k in trusted})
    if listed and key.get_algorithm() not in listed:
        same_type = await _server_key(target, listed)
        if same_type is None:
            return (f"node {node!r}: {path} lists only {', '.join(listed)} key(s) for {pattern}, "
                    f"and that host offers no key of that type (it offers {key.get_algorithm()}, "
                    f"{fingerprint}); if that key is right, add this line: {line}")
        if any(k.public_data == same_type.public_data for k in trusted):
            return None
        key, line = same_type, f"{pattern} {same_type.export_public_key().decode().strip()}"
        fingerprint = same_type.get_fingerprint()
    if trusted:
        return (f"node {node!r}: the host key of {pattern} CHANGED ({fingerprint}); refusing to "
                f"connect. If the change is expected, replace its line in {path} with: {line}")
    if revoked:
        return (f"node {node!r}: the host key of {pattern} ({fingerprint}) is not in {path}, "
                f"which only lists revoked keys for it; if this key is right, add this line: {line}")
    return (f"node {node!r}: the host key of {pattern} ({fingerprint}) is not in {path}; "
            f"if it is right, add this line: {line}")


async def _server_key(target: Endpoint, algorithms: list[str] | None = None):
    """The host key the server offers (of one of ``algorithms``), or None."""
    import asyncssh

    options: dict[str, Any] = {"tunnel": target.jump} if target.jump else {}
    if algorithms:  # an RSA key is offered under the names of its signature algorithms
        options["server_host_key_algs"] = [
            name for algorithm in algorithms
            for name in (("rsa-sha2-256", "rsa-sha2-512", "ssh-rsa") if algorithm == "ssh-rsa"
                         else (algorithm,))]
    try:
        return await asyncio.wait_for(
            asyncssh.get_server_host_key(target.host, target.port, **options), CONNECT_TIMEOUT)
    except Exception:
        return None


async def _connect(node: str, target: Endpoint):
    import asyncssh

    key = str(target)
    lock = _connect_locks.setdefault(key, asyncio.Lock())
    async with lock:
        connection = _connections.get(key)
        if connection is not None and not connection.is_closed():
            return connection
        # The rest (HostName, User, Port, IdentityFile, CertificateFile, ProxyJump,
        # UserKnownHostsFile) comes from ~/.ssh/config, read by asyncssh; with no known-hosts
        # file at all, asyncssh trusts no key.
        options: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "keepalive_interval": 15}
        if target.url_user:
            options["username"] = target.url_user
        if target.url_port:
            options["port"] = target.url_port
        if not os.environ.get("SSH_AUTH_SOCK"):
            options["agent_path"] = None
        where = _host_pattern(target.host, target.port)
        try:
            connection = await asyncio.wait_for(asyncssh.connect(target.alias, **options),
                                                CONNECT_TIMEOUT * (2 if target.jump else 1) + 1)
        except asyncssh.ConfigParseError as exc:
            raise NodeUnavailable(f"node {node!r}: cannot read your SSH config: {exc}",
                                  "Fix that line of ~/.ssh/config.",
                                  status="unreachable") from None
        except asyncssh.HostKeyNotVerifiable:
            problem = await _host_key_problem(node, target)
            raise NodeUnavailable(problem or f"node {node!r}: the host key of {where} could "
                                  "not be verified",
                                  "Check the host key with the node's administrator.",
                                  status="auth_error") from None
        except asyncssh.PermissionDenied as exc:
            agent = os.environ.get("SSH_AUTH_SOCK")
            hint = ("Load the authorised key into your agent (ssh-add)." if agent else
                    "No ssh-agent is running (SSH_AUTH_SOCK is unset): start one and ssh-add "
                    "your key, or put it in ~/.ssh/id_ed25519 (or name it with IdentityFile "
                    "in ~/.ssh/config).")
            raise NodeUnavailable(f"node {node!r}: {target} refused every key ({exc.reason})",
                                  hint, status="auth_error") from None
        except (asyncio.TimeoutError, TimeoutError):
            raise NodeUnavailable(f"node {node!r}: no SSH answer from {target} within "
                                  f"{CONNECT_TIMEOUT:g}s", "Check the host and port.",
                                  status="unreachable") from None
        except (OSError, asyncssh.Error) as exc:
            # A key exchange cut short may be a host key problem (known_hosts allows only
            # key types the server does not have): ask before calling it unreachable.
            problem = await _host_key_problem(node, target)
            if problem:
                raise NodeUnavailable(problem, "Check the host key with the node's administrator.",
                                      status="auth_error") from None
            raise NodeUnavailable(f"node {node!r}: cannot reach {target} over SSH: {exc}",
                                  "Check the host, the port and that sshd runs there.",
                                  status="unreachable") from None
        _connections[key] = connection
        return connection


async def _open_bridge(node: str, url: str, timeout: float) -> socket.socket:
    import asyncssh

    target = endpoint(url)
    host, path = target.alias, target.path
    connection = await _connect(node, target)
    try:
        reader, writer = await asyncio.wait_for(connection.open_unix_connection(path), timeout)
    except asyncssh.ChannelOpenError as exc:
        reason = exc.reason or ""
        missing = "no such file" in reason.lower() or "not found" in reason.lower()
        if missing or exc.code == asyncssh.OPEN_CONNECT_FAILED:
            raise NodeUnavailable(
                f"node {node!r}: {host} cannot open {path} ({reason or 'connect failed'})",
                "Start `virshle node serve` on that host, or fix the socket path in the URL.",
                status="socket_not_found" if missing or "refused" not in reason.lower() else "offline",
            ) from None
        raise NodeUnavailable(f"node {node!r}: {host} refused a channel to {path}: {reason}",
                              "The remote sshd must allow stream-local forwarding.",
                              status="auth_error") from None
    except (asyncio.TimeoutError, TimeoutError):
        raise NodeUnavailable(f"node {node!r}: opening {path} on {host} took more than "
                              f"{timeout:g}s", status="offline") from None
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()

    async def channel_to_socket() -> None:
        try:
            while data := await reader.read(65536):
                await loop.sock_sendall(theirs, data)
        except (OSError, asyncssh.Error):
            pass
        finally:
            try:
                theirs.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    async def socket_to_channel() -> None:
        try:
            while data := await loop.sock_recv(theirs, 65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncssh.Error):
            pass
        finally:
            try:
                writer.write_eof()
            except (OSError, asyncssh.Error):
                pass

    async def pump() -> None:
        await asyncio.gather(channel_to_socket(), socket_to_channel())
        writer.close()
        theirs.close()

    loop.create_task(pump())
    return ours


def open_socket(node: str, url: str, timeout: float) -> socket.socket:
    """A connected socket that reaches the node daemon's unix socket over SSH."""
    future = asyncio.run_coroutine_threadsafe(_open_bridge(node, url, timeout), _event_loop())
    try:
        return future.result(timeout=CONNECT_TIMEOUT + timeout + 2)
    except TimeoutError:
        future.cancel()
        raise NodeUnavailable(f"node {node!r}: no answer over SSH in time",
                              status="unreachable") from None
