"""A connection turned into a plain byte stream (``Upgrade: virshle-tunnel``): one end of a
stream between two nodes that the command line carries from one daemon to the other,
and the helpers that pump bytes through it."""

from __future__ import annotations

import asyncio

import h11

from .http import HTTPError, Request, StreamResponse

UPGRADE = "virshle-tunnel"
CHUNK = 1024 * 1024


class Tunnel(StreamResponse):
    """The daemon's end of a tunnel, once ``prepare`` has switched protocols: ``reader`` and
    ``writer`` carry raw bytes both ways until either side closes."""

    upgraded = True

    def __init__(self) -> None:
        super().__init__(101)
        self.reader: "Prefixed | None" = None
        self.writer: asyncio.StreamWriter | None = None

    async def prepare(self, request: Request) -> None:
        if request.headers.get("upgrade", "").lower() != UPGRADE:
            raise HTTPError(400, "not_tunnel", "this route is a byte stream",
                            f"Send Connection: Upgrade and Upgrade: {UPGRADE}.")
        connection = self._connection = request._connection
        await connection.stop_watching()  # the stream reads the connection from now on
        await connection.send(h11.InformationalResponse(
            status_code=101, reason=b"Switching Protocols",
            headers=[("Upgrade", UPGRADE), ("Connection", "Upgrade")]))
        connection.answered = self
        trailing, _ = connection.h11.trailing_data
        self.reader = Prefixed(connection.reader, bytes(trailing))
        self.writer = connection.writer

    def end(self) -> None:
        """Close the connection (``close``, a response's flag, says the server closes it)."""
        if self.writer is not None:
            self.writer.close()


class Prefixed:
    """A stream reader that first hands out bytes already read (past the HTTP head)."""

    def __init__(self, reader: asyncio.StreamReader, data: bytes):
        self._reader = reader
        self._data = data

    def unread(self, data: bytes) -> None:
        """Hand ``data`` out again, first."""
        self._data = data + self._data

    async def read(self, n: int = -1) -> bytes:
        if self._data:
            data, self._data = (self._data, b"") if n < 0 else (self._data[:n], self._data[n:])
            return data
        return await self._reader.read(n)

    async def readexactly(self, n: int) -> bytes:
        head, self._data = self._data[:n], self._data[n:]
        return head + (await self._reader.readexactly(n - len(head)) if n > len(head) else b"")

    async def readline(self) -> bytes:
        if b"\n" in self._data:
            line, _, self._data = self._data.partition(b"\n")
            return line + b"\n"
        head, self._data = self._data, b""
        return head + await self._reader.readline()


async def pump(reader, writer: asyncio.StreamWriter, count=None) -> None:
    """Copy until the end of ``reader``, then end ``writer``'s side (a half-close)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
            if count is not None:
                count(len(data))
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            pass


async def splice(tunnel: Tunnel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Carry bytes both ways between a tunnel and a local stream until both sides ended."""
    try:
        await asyncio.gather(pump(tunnel.reader, writer), pump(reader, tunnel.writer))
    finally:
        writer.close()
        tunnel.end()
