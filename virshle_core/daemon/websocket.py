"""The serial console's WebSocket (RFC 6455), on wsproto, over a connection that
``http.py`` accepted: the upgrade, binary messages both ways, pings, the close."""

from __future__ import annotations

from typing import Any, AsyncIterator

import h11

from .http import HTTPError, Request, StreamResponse

MAX_MESSAGE = 1024 * 1024
"""Bytes of one message a client may send (its fragments together); past it, the close."""


class WebSocketResponse(StreamResponse):
    """The server side of a WebSocket (RFC 6455), once ``prepare`` has accepted the upgrade."""

    upgraded = True

    def __init__(self) -> None:
        super().__init__(101)
        self._ws: Any = None
        self.closed = False

    async def prepare(self, request: Request) -> None:
        import base64
        import hashlib

        from wsproto.connection import Connection, ConnectionType

        key = request.headers.get("sec-websocket-key")
        if request.headers.get("upgrade", "").lower() != "websocket" or not key:
            raise HTTPError(400, "not_websocket", "this route speaks WebSocket only",
                            "Send Upgrade: websocket with a Sec-WebSocket-Key.")
        accept = base64.b64encode(hashlib.sha1(
            key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
        connection = self._connection = request._connection
        await connection.stop_watching()  # the WebSocket reads the stream from now on
        await connection.send(h11.InformationalResponse(status_code=101, reason=b"Switching Protocols", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)]))
        connection.answered = self
        self._ws = Connection(ConnectionType.SERVER)
        trailing, _ = connection.h11.trailing_data
        if trailing:
            self._ws.receive_data(trailing)

    async def send_bytes(self, data: bytes) -> None:
        from wsproto.events import BytesMessage

        await self._connection.send_raw(self._ws.send(BytesMessage(data=data)))

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        from wsproto.connection import ConnectionState
        from wsproto.events import CloseConnection

        if self.closed or self._ws is None:
            return
        self.closed = True
        if self._ws.state is ConnectionState.OPEN:
            try:
                await self._connection.send_raw(self._ws.send(
                    CloseConnection(code=code, reason=message.decode(errors="replace"))))
            except (ConnectionError, RuntimeError):
                pass
        self._connection.writer.close()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Each message from the client, as bytes (text is encoded); ends when it closes."""
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

        parts: list[bytes] = []
        size = 0
        reader = self._connection.reader
        while not self.closed:
            for event in self._ws.events():
                if isinstance(event, (BytesMessage, TextMessage)):
                    data = event.data
                    parts.append(data.encode() if isinstance(data, str) else bytes(data))
                    size += len(parts[-1])
                    if size > MAX_MESSAGE:  # a console takes keystrokes, not a pile of fragments
                        await self.close(1009, b"message too big")
                        return
                    if event.message_finished:
                        yield b"".join(parts)
                        parts, size = [], 0
                elif isinstance(event, Ping):
                    await self._connection.send_raw(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    try:
                        await self._connection.send_raw(self._ws.send(event.response()))
                    except (ConnectionError, RuntimeError):
                        pass
                    self.closed = True
                    return
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
                return
            self._ws.receive_data(data)
