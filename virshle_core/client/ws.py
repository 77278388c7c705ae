"""The console's WebSocket, client side, over a connected socket: wsproto (the daemon's
side is on it too) does RFC 6455; this is the blocking loop a console needs around it:
the upgrade, binary messages out, messages in (pings answered), the close."""

from __future__ import annotations

import socket


class WebSocketError(Exception):
    pass


class UpgradeRefused(WebSocketError):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"upgrade refused with HTTP {status}")
        self.status = status
        self.body = body


class WebSocket:
    def __init__(self, sock: socket.socket, connection) -> None:
        self.sock = sock
        self.connection = connection  # wsproto's, in OPEN state
        self.closed = False
        self.pending: list[bytes] = []  # messages already received, not yet handed out

    @classmethod
    def connect(cls, sock: socket.socket, path: str) -> "WebSocket":
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request

        connection = WSConnection(ConnectionType.CLIENT)
        sock.sendall(connection.send(Request(host="virshle", target=path)))
        status, body = None, b""
        while True:
            data = sock.recv(65536)
            if not data:
                raise WebSocketError("the daemon closed the connection during the upgrade")
            connection.receive_data(data)
            for event in connection.events():
                if isinstance(event, AcceptConnection):
                    return cls(sock, connection)
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise UpgradeRefused(status, body)
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise UpgradeRefused(status or 0, body)

    def send(self, data: bytes) -> None:
        from wsproto.events import BytesMessage

        self.sock.sendall(self.connection.send(BytesMessage(data=data)))

    def recv(self) -> bytes | None:
        """The next data message, or None when the peer closed."""
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

        parts: list[bytes] = []
        while not self.pending:
            if self.closed:
                return None
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return None
            self.connection.receive_data(data)
            for event in self.connection.events():
                if isinstance(event, (BytesMessage, TextMessage)):
                    chunk = event.data
                    parts.append(chunk.encode() if isinstance(chunk, str) else bytes(chunk))
                    if event.message_finished:
                        self.pending.append(b"".join(parts))
                        parts = []
                elif isinstance(event, Ping):
                    self.sock.sendall(self.connection.send(event.response()))
                elif isinstance(event, CloseConnection):
                    try:
                        self.sock.sendall(self.connection.send(event.response()))
                    except OSError:
                        pass
                    self.closed = True
        return self.pending.pop(0)

    def close(self) -> None:
        from wsproto.connection import ConnectionState
        from wsproto.events import CloseConnection

        if not self.closed and self.connection.state is ConnectionState.OPEN:
            try:
                self.sock.sendall(self.connection.send(CloseConnection(code=1000)))
            except OSError:
                pass
        self.closed = True
        self.sock.close()
