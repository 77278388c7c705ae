"""A small HTTP/1.1 client over any connected stream socket.

The CLI talks to nodes over a unix socket (and, for remote nodes, over an
SSH channel bridged to a socket). The standard library's ``http.client``
drags in the ``email`` package, which alone costs a third of the CLI's
start-up budget; this speaks the little of HTTP/1.1 the node API uses:
one request per connection, ``Content-Length`` or chunked replies.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is an import the CLI's start-up avoids

from .jsonlite import loads

if TYPE_CHECKING:
    import socket
    from typing import Any, Iterator


class HttpError(Exception):
    """The peer broke the protocol or closed the connection early."""


class Response:
    def __init__(self, sock: socket.socket, reader: "_Reader", status: int, reason: str,
                 headers: dict[str, str]):
        self._sock = sock
        self._reader = reader
        self.status = status
        self.reason = reason
        self.headers = headers

    def read(self) -> bytes:
        try:
            return b"".join(self.iter_chunks())
        finally:
            self.close()

    def json(self) -> Any:
        body = self.read()
        return loads(body) if body else None

    def iter_chunks(self) -> Iterator[bytes]:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = self._reader.readline()
                if not size_line:
                    raise HttpError("connection closed inside a chunked reply")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._reader.readline()
                    return
                yield self._reader.read_exact(size)
                self._reader.readline()
        elif "content-length" in self.headers:
            length = int(self.headers["content-length"])
            if length:
                yield self._reader.read_exact(length)
        else:
            while True:
                data = self._reader.read_some()
                if not data:
                    return
                yield data

    def iter_lines(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.iter_chunks():
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line
        if buffer:
            yield buffer

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def read_some(self) -> bytes:
        if self.buffer:
            data, self.buffer = self.buffer, b""
            return data
        return self.sock.recv(65536)

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line + b"\n"

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(max(65536, size - len(self.buffer)))
            if not data:
                raise HttpError("connection closed before the whole reply arrived")
            self.buffer += data
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def request(sock: socket.socket, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None) -> Response:
    """Send one request on ``sock`` and read the reply's head."""
    payload = b""
    headers = {"Accept": "application/json", **(headers or {})}
    head = [f"{method} {path} HTTP/1.1", "Host: virshle", "Connection: close"]
    if body is not None:
        import json

        payload = json.dumps(body).encode()
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    for key, value in headers.items():
        head.append(f"{key}: {value}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
    reader = _Reader(sock)
    status_line = reader.readline()
    if not status_line:
        raise HttpError("the daemon closed the connection without answering")
    parts = status_line.decode("latin-1").strip().split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HttpError(f"not an HTTP reply: {status_line[:80]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    response_headers: dict[str, str] = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        key, _, value = line.decode("latin-1").partition(":")
        response_headers[key.strip().lower()] = value.strip()
    return Response(sock, reader, status, reason, response_headers)
