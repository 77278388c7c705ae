"""A minimal WebSocket client (RFC 6455) over a connected socket, for the console.

The node daemon serves a VM's serial console as a WebSocket of binary
messages. This is the little of the protocol a console needs: the upgrade,
masked binary frames out, binary/close/ping frames in.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BINARY, CLOSE, PING, PONG, TEXT, CONTINUATION = 0x2, 0x8, 0x9, 0xA, 0x1, 0x0


class WebSocketError(Exception):
    pass


class WebSocket:
    def __init__(self, sock: socket.socket, buffered: bytes = b""):
        self.sock = sock
        self.buffer = buffered
        self.closed = False

    @classmethod
    def connect(cls, sock: socket.socket, path: str) -> "WebSocket":
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: virshle\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n")
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                raise WebSocketError("the daemon closed the connection during the upgrade")
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        if status != 101:
            length = int(headers.get("content-length") or 0)
            while len(rest) < length:
                data = sock.recv(65536)
                if not data:
                    break
                rest += data
            raise UpgradeRefused(status, rest)
        expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise WebSocketError("bad Sec-WebSocket-Accept in the upgrade reply")
        return cls(sock, rest)

    def send(self, data: bytes, opcode: int = BINARY) -> None:
        mask = os.urandom(4)
        length = len(data)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buffer += data
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def recv(self) -> bytes | None:
        """The next data message, or None when the peer closed."""
        while True:
            try:
                first, second = self._read(2)
            except EOFError:
                self.closed = True
                return None
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode in (BINARY, TEXT, CONTINUATION):
                return payload
            if opcode == PING:
                self.send(payload, PONG)
            elif opcode == CLOSE:
                self.closed = True
                try:
                    self.send(payload[:2], CLOSE)
                except OSError:
                    pass
                return None

    def close(self) -> None:
        if not self.closed:
            try:
                self.send(struct.pack("!H", 1000), CLOSE)
            except OSError:
                pass
        self.closed = True
        self.sock.close()


class UpgradeRefused(WebSocketError):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"upgrade refused with HTTP {status}")
        self.status = status
        self.body = body
