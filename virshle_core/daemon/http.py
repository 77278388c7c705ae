"""The node daemon's HTTP/1.1 server: asyncio streams and h11 for the protocol (the
console's WebSocket, on wsproto, is in ``websocket.py``).

Why not aiohttp: with its C parsers, yarl, multidict and friends it was 15.6 MiB of a
59 MiB daemon, for a server that only ever speaks to the CLI on a unix socket. h11 and
wsproto are the protocol state machines alone (1.6 MiB together); what is left here is
small: bodies read whole under a cap, chunked streams, and the rules of docs/api.md:

- a request head must arrive within ``header_timeout`` seconds (keep-alive idles too),
  and a whole body within ``body_timeout`` (else 408);
- one user (not root) holds at most ``max_per_user`` connections (else 503), and a client
  that sends more than ``READ_AHEAD`` bytes while it is answered is cut off;
- a request line over ``MAX_LINE`` bytes gets 414, a head over ``MAX_HEAD`` bytes 431,
  a body over ``max_body`` bytes 413, malformed HTTP 400, each in the JSON error shape;
- a handler whose client goes away is cancelled (like aiohttp's
  ``handler_cancellation``): a create then undoes itself.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

MAX_LINE = 8190
"""Bytes in a request line (the URL, mostly), as aiohttp and nginx allow."""
MAX_HEAD = 16384
"""Bytes in a whole request head."""
READ_AHEAD = 65536
"""Bytes a client may send while its request is answered (a pipelined request's worth);
past it, the connection is closed: nobody's bytes pile up in the daemon."""
BODY_TIMEOUT = 30.0
"""Seconds a whole request body may take to arrive, however it trickles."""
MAX_PER_USER = 64
"""Connections one user (not root) may hold open at once."""

Handler = Callable[["Request"], Awaitable["Response"]]


class HTTPError(Exception):
    """An HTTP-level refusal, answered in the API's JSON error shape."""

    def __init__(self, status: int, code: str, message: str, hint: str = "", close: bool = False):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.close = close

    def response(self) -> "Response":
        response = json_response({"error": self.code, "message": self.message, "hint": self.hint},
                                 status=self.status)
        response.close = self.close
        return response


class Headers(dict):
    """Request headers by lower-case name (the last value of a repeated one)."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class Request:
    def __init__(self, connection: "_Connection", event: h11.Request):
        self._connection = connection
        self.method = event.method.decode("ascii")
        self.path_qs = event.target.decode("latin-1")
        parts = urlsplit(self.path_qs)
        self.path = unquote(parts.path)
        self.query: dict[str, str] = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers)
        self.match_info: dict[str, str] = {}
        self.route: str | None = None  # the path template that matched (routes.py)
        self.connection_state = connection.state  # what handlers keep per connection (its peer)
        length = self.headers.get("content-length")
        self.content_length = int(length) if length is not None else None
        self.body = b""

    @property
    def can_read_body(self) -> bool:
        return bool(self.body)

    async def read(self) -> bytes:
        return self.body

    async def json(self) -> Any:
        return json.loads(self.body)


class Response:
    def __init__(self, body: bytes = b"", status: int = 200, headers: dict[str, str] | None = None,
                 content_type: str = "application/json"):
        self.status = status
        self.body = body
        self.headers = {"Content-Type": content_type, **(headers or {})}
        self.close = False


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data).encode(), status, headers)


class StreamResponse(Response):
    """A reply sent in pieces as they come (chunked): NDJSON progress, events, logs."""

    upgraded = False  # a WebSocket (websocket.py): the connection is its own from then on

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None):
        super().__init__(b"", status, {"Content-Type": "application/octet-stream", **(headers or {})})
        self._connection: _Connection | None = None

    async def prepare(self, request: Request) -> None:
        self._connection = request._connection
        await self._connection.send(self._head())
        self._connection.answered = self

    def _head(self) -> h11.Response:
        return h11.Response(status_code=self.status, headers=list(self.headers.items()),
                            reason=_reason(self.status))

    async def write(self, data: bytes) -> None:
        assert self._connection is not None, "prepare() first"
        if data:
            await self._connection.send(h11.Data(data=data))

    async def write_eof(self) -> None:
        if self._connection is not None and self._connection.h11.our_state is h11.SEND_BODY:
            await self._connection.send(h11.EndOfMessage())


class Server:
    """Serves ``handle`` on a unix socket; ``handle`` turns every error into a response."""

    def __init__(self, handle: Handler, *, header_timeout: float, max_body: int,
                 body_timeout: float = BODY_TIMEOUT, max_per_user: int = MAX_PER_USER):
        self.handle = handle
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_body = max_body
        self.max_per_user = max_per_user
        self.connections: set[_Connection] = set()
        self.per_user: dict[int, int] = {}
        self._server: asyncio.AbstractServer | None = None

    async def listen(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._serve_connection, path, limit=65536)

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        connection = _Connection(self, reader, writer)
        uid = _peer_uid(writer.get_extra_info("socket"))
        if uid and self.per_user.get(uid, 0) >= self.max_per_user:
            await connection._refuse(HTTPError(
                503, "too_many_connections", f"uid {uid} holds {self.max_per_user} connections to "
                "this node already", "Close some (event streams, consoles) and try again."))
            writer.close()
            return
        self.per_user[uid] = self.per_user.get(uid, 0) + 1
        self.connections.add(connection)
        try:
            await connection.run()
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            from ..log import logger

            logger.opt(exception=True).error("HTTP connection failed")
        finally:
            self.connections.discard(connection)
            self.per_user[uid] -= 1
            if not self.per_user[uid]:
                del self.per_user[uid]
            writer.close()

    async def close(self, timeout: float) -> None:
        """Stop accepting; drop idle connections; give requests ``timeout`` seconds, then
        cancel them."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.handler is None:
                connection.writer.close()
        handlers = [c.handler for c in self.connections if c.handler is not None]
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)


class _Connection:
    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.handler: asyncio.Task | None = None
        self.answered: StreamResponse | None = None  # a reply its handler started itself
        self._watch: asyncio.Task | None = None
        self.gone = False  # the client closed its end: nothing more is sent
        self.state: dict[str, Any] = {"socket": writer.get_extra_info("socket")}

    async def send(self, event: Any) -> None:
        await self.send_raw(self.h11.send(event))

    async def send_raw(self, data: bytes) -> None:
        if self.gone or self.writer.is_closing():
            raise ConnectionResetError("the client went away")
        self.writer.write(data)
        await self.writer.drain()

    async def run(self) -> None:
        while True:
            try:
                event = await asyncio.wait_for(self._next_event(), self.server.header_timeout)
            except asyncio.TimeoutError:
                return  # a head that never completes, or an idle keep-alive: cut it
            except HTTPError as exc:
                await self._refuse(exc)
                return
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                if status == 431:
                    await self._refuse(HTTPError(431, "headers_too_large",
                                                 "a request header is too large"))
                else:
                    await self._refuse(HTTPError(status, "bad_http",
                                                 f"the request is not valid HTTP/1.1: {exc}"))
                return
            if not isinstance(event, h11.Request):
                return  # the client closed
            request = Request(self, event)
            try:
                await self._read_body(request)
            except HTTPError as exc:
                await self._refuse(exc)
                return
            except h11.RemoteProtocolError as exc:
                await self._refuse(HTTPError(400, "bad_http",
                                             f"the request is not valid HTTP/1.1: {exc}"))
                return
            if not await self._answer(request):
                return
            if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is not h11.DONE:
                return
            try:
                self.h11.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(65536)
            if self.h11.their_state is h11.IDLE:
                _check_head(self.h11.trailing_data[0] + data)
            self.h11.receive_data(data)

    async def _read_body(self, request: Request) -> None:
        limit = self.server.max_body
        if request.content_length is not None and request.content_length > limit:
            raise HTTPError(413, "body_too_large",
                            f"the request body is {request.content_length} bytes; at most "
                            f"{limit} bytes ({limit // 1024**2} MiB) are accepted", close=True)
        parts, size = [], 0
        deadline = asyncio.get_running_loop().time() + self.server.body_timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                event = await asyncio.wait_for(self._next_event(), max(left, 0.001))
            except asyncio.TimeoutError:
                raise HTTPError(408, "body_timeout", f"the request body did not arrive within "
                                f"{self.server.body_timeout:g}s", close=True) from None
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise HTTPError(413, "body_too_large", f"the request body is over {limit} "
                                    f"bytes ({limit // 1024**2} MiB)", close=True)
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the client closed before its body arrived")
        request.body = b"".join(parts)

    async def _answer(self, request: Request) -> bool:
        """Run the handler, cancelled if the client leaves; send its reply. False: close."""
        self.answered = None
        self.handler = asyncio.ensure_future(self.server.handle(request))
        self._watch = asyncio.ensure_future(self._watch_for_close(self.handler))
        try:
            response = await self.handler
        except (asyncio.CancelledError, ConnectionError):
            return False  # the client went away (the handler said so at DEBUG)
        except Exception:  # the handler maps errors to replies; this is a last resort
            from ..log import logger

            logger.opt(exception=True).error("{} {} failed", request.method, request.path)
            response = HTTPError(500, "internal", "the daemon failed to handle the request",
                                 close=True).response()
        finally:
            await self.stop_watching()
            self.handler = None
        if self.gone or self.writer.is_closing():
            return False
        if self.answered is not None:  # a stream or WebSocket already went out
            if self.answered.upgraded:
                return False
            await self.answered.write_eof()
            return self.h11.our_state is h11.DONE
        headers = [(k, v) for k, v in response.headers.items()]
        headers.append(("Content-Length", str(len(response.body))))
        if response.close:
            headers.append(("Connection", "close"))
        await self.send(h11.Response(status_code=response.status, headers=headers,
                                     reason=_reason(response.status)))
        if response.body and request.method != "HEAD":  # a reply to HEAD is its head alone
            await self.send(h11.Data(data=response.body))
        await self.send(h11.EndOfMessage())
        return not response.close

    async def _watch_for_close(self, handler: asyncio.Task) -> None:
        """Read ahead while the handler runs: end of stream means the client left. A client
        that sends more than ``READ_AHEAD`` meanwhile is cut off."""
        taken = 0
        while True:
            try:
                data = await self.reader.read(65536)
            except OSError:  # reset or broken: the client is gone all the same
                data = b""
            taken += len(data)
            if not data or taken > READ_AHEAD:
                self.gone = True
                handler.cancel()
                if data:
                    self.writer.close()
                return
            self.h11.receive_data(data)  # a pipelined request: h11 keeps it for later

    async def stop_watching(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None and not watch.done():
            watch.cancel()
            try:
                await watch
            except asyncio.CancelledError:
                pass

    async def _refuse(self, error: HTTPError) -> None:
        response = error.response()
        body = response.body
        try:
            self.writer.write(
                f"HTTP/1.1 {error.status} {_reason(error.status)}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode() + body)
            await self.writer.drain()
        except ConnectionError:
            pass


def _peer_uid(sock) -> int:
    """The uid at the other end of a unix socket (``SO_PEERCRED``); 0 when it cannot be told."""
    import socket
    import struct

    try:
        return struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                   struct.calcsize("3i")))[1]
    except (AttributeError, OSError):
        return 0


def _check_head(buffer: bytes) -> None:
    """Refuse a request line or header line over ``MAX_LINE`` bytes, as soon as it shows."""
    end = buffer.find(b"\r\n\r\n")
    head = buffer if end < 0 else buffer[:end]
    lines = head.split(b"\n")
    if len(lines[0]) > MAX_LINE:
        raise HTTPError(414, "uri_too_long", f"the request's URL is too long (at most {MAX_LINE} bytes)")
    if any(len(line) > MAX_LINE for line in lines[1:]) or len(head) > MAX_HEAD:
        raise HTTPError(431, "headers_too_large",
                        f"a request header is too large (at most {MAX_LINE} bytes a line, "
                        f"{MAX_HEAD} in all)")


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
