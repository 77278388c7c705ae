"""Talking to nodes: transports and the API client (``fanout.py``: many nodes at once).

A node is reached by its URL: ``unix:///var/lib/virshle/virshle.sock`` or
``ssh://user@host:port/var/lib/virshle/virshle.sock``. Either way the
client speaks HTTP/1.1 + JSON to the node daemon's ``/api/v1``.
"""

from __future__ import annotations

import socket
TYPE_CHECKING = False  # typing itself is an import the CLI's start-up avoids

from ..wire import api
from ..errors import NodeUnavailable, VirshleError, from_json
from . import http
from .fanout import fan_out, one_per_daemon  # noqa: F401 -- the client's own names

if TYPE_CHECKING:
    from ..verbs import Verb
    from typing import Any

    from ..config import NodeEntry

API = "/api/v1"
CONNECT_TIMEOUT = 3.0
SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~:")


def quote(ref: str) -> str:
    """A reference as a path segment (what ``urllib.parse.quote(ref, safe=":")`` gives)."""
    if all(c in SAFE for c in ref):
        return ref  # ids, names and uuids: the import of urllib is not needed
    from urllib.parse import quote as url_quote

    return url_quote(ref, safe=":")


class Url:
    """The parts of a node URL the client needs: ``unix:///path`` or ``ssh://user@host:port/path``."""

    def __init__(self, url: str):
        self.scheme, _, rest = url.partition("://")
        if self.scheme == "unix":
            self.path = rest
        else:
            from urllib.parse import urlsplit

            self.path = urlsplit(url).path


_SPAWNED: set[str] = set()
"""The SSH holders this process started (one per user, host and port)."""


class NodeClient:
    """The API of one node."""

    def __init__(self, entry: NodeEntry):
        self.entry = entry
        self.name = entry.name
        self.url = Url(entry.url)
        self.timeout = float(entry.timeout)
        self.warnings: list[str] = []  # notices the node sent back (e.g. DHCP unreachable)
        self.node_id: str | None = None  # the daemon's identity, from its replies
        self._sockets: set[socket.socket] = set()  # open requests, for abort()

    def abort(self) -> None:
        """Cut every request in flight (Ctrl-C): the node sees its client leave."""
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"NodeClient({self.name!r}, {self.entry.url!r})"

    # --- transport ------------------------------------------------------------------

    def connect(self) -> socket.socket:
        try:
            return self._connect()
        except VirshleError as exc:
            raise self._said(exc) from None

    def _connect(self) -> socket.socket:
        if self.url.scheme == "unix":
            return self._connect_unix(self.url.path)
        if self.url.scheme == "ssh":
            return self._connect_ssh()
        raise NodeUnavailable(f"node {self.name!r}: unknown URL scheme {self.url.scheme!r}",
                              "Use unix:// or ssh://.", status="unreachable")

    def _connect_ssh(self) -> socket.socket:
        """Through the connection a holder keeps (``sshhold.py``), else a new one (and a
        holder started for the next command, unless ``[[node]] persist = 0``)."""
        from . import sshhold

        target = sshhold.endpoint(self.entry.url)
        persist = getattr(self.entry, "persist", 0)
        if persist > 0:
            sock = sshhold.connect(target, self.timeout)
            if sock is not None:
                return sock
        from . import ssh  # asyncssh only when no holder answers

        sock = ssh.open_socket(self.name, self.entry.url, self.timeout)
        sock.settimeout(self.timeout)
        if persist > 0 and self.entry.url not in _SPAWNED:
            _SPAWNED.add(self.entry.url)
            sshhold.spawn(self.name, self.entry.url, persist)
        return sock

    def _connect_unix(self, path: str) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(path)
        except FileNotFoundError:
            sock.close()
            from ..daemon.service import how_to_start

            raise NodeUnavailable(
                f"node {self.name!r}: no socket at {path}",
                f"Start the node daemon with {how_to_start()}.", status="socket_not_found",
            ) from None
        except PermissionError:
            sock.close()
            raise NodeUnavailable(
                f"node {self.name!r}: permission denied on {path}",
                "Join the 'virshle' group (usermod -aG virshle $USER) or run as root.",
                status="auth_error",
            ) from None
        except (ConnectionRefusedError, socket.timeout, OSError) as exc:
            sock.close()
            from ..daemon.service import how_to_start

            raise NodeUnavailable(
                f"node {self.name!r}: the daemon does not answer on {path} ({exc.__class__.__name__})",
                f"Its socket is left from a daemon that stopped: start it again with "
                f"{how_to_start()}.", status="offline",
            ) from None
        sock.settimeout(self.timeout)
        return sock

    # --- requests -------------------------------------------------------------------

    def open(self, method: str, path: str, body: Any = None, timeout: float | None = None,
             headers: dict[str, str] | None = None) -> http.Response:
        sock = self.connect()
        self._sockets.add(sock)
        if timeout is not None:
            sock.settimeout(timeout)
        try:
            return http.request(sock, method, API + path, body, headers)
        except socket.timeout:
            sock.close()
            raise NodeUnavailable(
                f"node {self.name!r} did not answer {method} {path} within {self.timeout:g}s",
                "Raise [[node]] timeout, or check the daemon's log.",
                status="offline",
            ) from None
        except (OSError, http.HttpError) as exc:
            sock.close()
            raise self._lost(method, path, exc) from None

    def stream(self, method: str, path: str, body: Any = None, read_timeout: float | None = None,
               headers: dict[str, str] | None = None) -> http.Response:
        """A reply to read as it comes (logs, events, progress); the daemon's error raised.

        ``read_timeout`` None waits as long as the stream lasts.
        """
        response = self.open(method, path, body, headers=headers)
        response._sock.settimeout(read_timeout)
        if response.status >= 400:
            raise self._error_of(response, method, path)
        return response

    def _error_of(self, response: http.Response, method: str, path: str) -> VirshleError:
        """The daemon's error, from a reply whose body should be the JSON error document."""
        try:
            data = response.json()
        except (ValueError, OSError, http.HttpError):
            data = None
        if not isinstance(data, dict):
            return self._said(VirshleError(f"node {self.name!r} answered {method} {path} with "
                                           f"HTTP {response.status} {response.reason}".rstrip()))
        return self._said(from_json(data, response.status))

    def _said(self, exc: VirshleError) -> VirshleError:
        """``exc``, marked as this node's (``--json`` errors name it)."""
        exc.node = exc.node or self.name
        return exc

    def _lost(self, method: str, path: str, exc: BaseException) -> NodeUnavailable:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return self._said(NodeUnavailable(
            f"node {self.name!r}: the connection was lost during {method} {path} ({detail})",
            "The node daemon stopped or restarted; what it had not finished is finished or "
            "undone when it starts again. Check `virshle node ping` and `virshle vm ls`.",
            status="offline"))

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """One request; the decoded JSON reply, or the daemon's error raised."""
        response = self.open(method, path, body, timeout)
        if response.status >= 400:
            raise self._error_of(response, method, path)
        try:
            data = response.json()
        except socket.timeout:
            raise NodeUnavailable(
                f"node {self.name!r} did not finish answering {method} {path} in time",
                status="offline",
            ) from None
        except (OSError, http.HttpError) as exc:
            raise self._lost(method, path, exc) from None
        except ValueError:
            raise VirshleError(f"node {self.name!r} sent a reply that is not JSON "
                               f"(HTTP {response.status})") from None
        self.node_id = response.headers.get("x-virshle-node-id") or self.node_id
        warnings = response.headers.get("x-virshle-warnings")
        if warnings:
            from .jsonlite import loads

            self.warnings.extend(w for w in loads(warnings) if w not in self.warnings)
        return data

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, body if body is not None else {}, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)

    # --- the node API: each reply read into its class of virshle_core.wire.api ------------

    def read(self, cls: type, data: Any) -> Any:
        """A reply as ``cls`` (a list of them for a list); a reply of another shape is this
        node's error, not a traceback."""
        try:
            if isinstance(data, list):
                return [cls.from_json(item) for item in data]
            return cls.from_json(data)
        except api.WireError as exc:
            raise VirshleError(f"node {self.name!r} sent a {cls.__name__} this client cannot "
                               f"read: {exc}", "Are the node and this CLI the same version? "
                               "`virshle node ping` shows the node's.") from None

    def ping(self) -> api.Pong:
        return self.read(api.Pong, self.get("/node/ping"))

    def info(self) -> api.NodeInfo:
        return self.read(api.NodeInfo, self.get("/node/info"))

    def templates(self) -> list[api.Template]:
        return self.read(api.Template, self.get("/templates"))

    def vms(self, state: str | None = None) -> list[api.Vm]:
        return self.read(api.Vm, self.get("/vms" + (f"?state={quote(state)}" if state else "")))

    def vm(self, ref: str, refresh: bool = False, leases: bool = True) -> api.Vm:
        """One VM by its wire reference: ``id:7``, ``name:web``, ``uuid:…``; ``refresh`` asks
        its VMM for its state instead of the daemon's record; ``leases=False`` skips the DHCP
        query (``ips`` is then empty): enough to find a VM."""
        query = "&".join((["refresh=1"] if refresh else []) + ([] if leases else ["leases=0"]))
        return self.read(api.Vm, self.get(f"/vms/{quote(str(ref))}" + (f"?{query}" if query else "")))

    def create_vms(self, request: api.CreateRequest | dict, on_progress=None) -> list[api.Vm]:
        """Create VMs; ``on_progress(what, done, total)`` hears about long copies."""
        body = request.to_json() if isinstance(request, api.Record) else request
        return self._with_progress("/vms", body, api.CreateLine, api.Vm, on_progress)

    def clone_vm(self, ref: str, request: api.CloneRequest, on_progress=None) -> api.Vm:
        """A clone of a stopped VM; ``on_progress(what, done, total)`` hears about the copies."""
        return self._with_progress(f"/vms/{quote(str(ref))}/clone", request.to_json(),
                                   api.CloneLine, api.Vm, on_progress)

    def _with_progress(self, path: str, body: dict, line_class: type, result_class: type,
                       on_progress) -> Any:
        """POST ``body`` to a route that can stream progress (NDJSON ``line_class`` lines)."""
        if on_progress is None:
            return self.read(result_class, self.post(path, body, timeout=max(self.timeout, 600.0)))
        from .jsonlite import loads

        response = self.stream("POST", path, body, read_timeout=max(self.timeout, 3600.0),
                               headers={"Accept": "application/x-ndjson"})
        if not response.headers.get("content-type", "").startswith("application/x-ndjson"):
            return self.read(result_class, response.json())  # a daemon that does not stream
        try:
            for text in response.iter_lines():
                line = self.read(line_class, loads(text))
                if line.progress is not None:
                    on_progress(line.progress.what, line.progress.done, line.progress.total)
                elif line.error is not None:
                    raise self._said(from_json(line.error.to_json(), line.status or 500))
                elif line.result is not None:
                    return line.result
        except (OSError, http.HttpError, ValueError) as exc:
            raise self._lost("POST", path, exc) from None
        finally:
            response.close()
        raise self._lost("POST", path, "it ended the reply without a result")

    def __getattr__(self, name: str) -> Any:
        """A plugin's verb, as the core's are (``client.ping_guest(ref)``): its declaration is
        looked up among the plugins' (loading them) the first time it is asked for."""
        if name.startswith("_"):
            raise AttributeError(name)
        from ..verbs import every

        for verb in every():
            if verb.attribute == name:
                return lambda *args, **values: self.perform(verb, *args, **values)
        raise AttributeError(f"NodeClient has no verb {name!r}")

    def perform(self, verb: "Verb", ref: str | None = None, **values: Any) -> Any:
        """Run a declared verb (``virshle_core.verbs``) on this node: on VM ``ref`` (a wire
        reference) when it acts on one; ``values`` fill its path's parameters and its body
        (or, for a verb without a body, its query). Its reply is read into its class (a
        plugin's verb the CLI holds only as data: the plain JSON)."""
        path = verb.path.replace("{ref}", quote(str(ref))) if ref is not None else verb.path
        for argument in verb.arguments:
            if argument.param:
                path = path.replace("{%s}" % argument.param, quote(str(values.pop(argument.param))))
        body = verb.body(values)
        if verb.request is None and values:
            query = "&".join(f"{quote(k)}={'1' if v is True else quote(str(v))}"
                             for k, v in values.items() if v not in (None, False))
            path += f"?{query}" if query else ""
        data = self.call(verb.method, path, body if body is not None or verb.method != "POST" else {},
                         timeout=max(self.timeout, 600.0))
        if verb.reply is None:
            return data
        if isinstance(verb.reply, str):
            kind = verb.reply[5:-1] if verb.reply.startswith("list[") else verb.reply
            return self.read(api.wire.TYPES[kind], data)
        return self.read(verb.reply, data)

    def logs(self, ref: str, follow: bool = False) -> http.Response:
        path = f"/vms/{quote(str(ref))}/logs" + ("?follow=1" if follow else "")
        return self.stream("GET", path, read_timeout=None if follow else self.timeout)

    def console_tail(self, ref: str, size: int) -> bytes:
        """The last ``size`` bytes of what the VM's console printed; empty when there is no
        log (or it cannot be read now)."""
        tail = b""
        try:
            response = self.logs(ref)
            try:
                for chunk in response.iter_chunks():
                    tail = (tail + chunk)[-size:]
            finally:
                response.close()
        except (VirshleError, OSError, http.HttpError):
            pass
        return tail

    def console(self, ref: str):
        """The VM's serial console as a WebSocket (raw bytes both ways)."""
        import json

        from .ws import UpgradeRefused, WebSocket

        sock = self.connect()
        try:
            ws = WebSocket.connect(sock, f"{API}/vms/{quote(str(ref))}/console")
        except UpgradeRefused as exc:
            sock.close()
            try:
                payload = json.loads(exc.body or b"{}")
            except ValueError:
                payload = {}
            raise self._said(from_json(payload if isinstance(payload, dict) else {},
                                       exc.status)) from None
        sock.settimeout(None)
        return ws

    def events(self) -> http.Response:
        """The event stream, its lines as they come (``api.read_event`` reads one)."""
        return self.stream("GET", "/events")


def _derive_methods() -> None:
    """A ``NodeClient`` method for each of the core's verbs: ``client.pause(ref)``,
    ``client.snapshot_create(ref, name="x", memory=True)``, ``client.gc(dry_run=True)``."""
    from ..verbs import core

    for verb in core():
        def method(self, *args: Any, _verb=verb, **values: Any) -> Any:
            return self.perform(_verb, *args, **values)

        method.__name__ = verb.attribute
        method.__doc__ = verb.summary
        if not hasattr(NodeClient, verb.attribute):
            setattr(NodeClient, verb.attribute, method)


_derive_methods()
