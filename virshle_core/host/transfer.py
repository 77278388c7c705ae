"""Files from one node to another over a byte stream (a tunnel the command line carries):
what a cold migration moves, and a live one's files that do not change while it runs.

The stream, from the sender: for each file a JSON line (``path``, ``size``, ``offset``,
``kind`` ``vm`` or ``base``, ``digest`` of a base), then its data as records of an
8-byte offset, an 8-byte length and the bytes (the holes of a sparse file are not sent),
a record of length 0, and the sha256 of the bytes sent; after the last file, the line
``{"end": true}``. The receiver answers one line: ``{"ok": true}`` once every file is
written, synced and checked, or ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Callable

CHUNK = 1024 * 1024
RECORD = struct.Struct(">QQ")


class TransferError(Exception):
    """The other side broke the stream or refused a file."""


def extents(fd: int, start: int, size: int) -> list[tuple[int, int]]:
    """The data of a file from ``start`` to ``size`` as (offset, length), holes skipped."""
    found, position = [], start
    while position < size:
        try:
            data = os.lseek(fd, position, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            break
        try:
            hole = os.lseek(fd, data, os.SEEK_HOLE)
        except OSError:
            hole = size
        hole = min(hole, size)
        if hole > data:
            found.append((data, hole - data))
        position = hole
    return found


async def send_files(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     files: list[dict], report: Callable[[int], None] = lambda n: None) -> None:
    """Send ``files`` (each: ``source``, an absolute path, and the header's fields), then
    wait for the receiver's answer; TransferError when it refused."""
    for entry in files:
        header = {k: v for k, v in entry.items() if k != "source"}
        source = entry["source"]
        fd = os.open(source, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            offset = min(entry.get("offset", 0), size)
            header.update(size=size, offset=offset)
            writer.write(json.dumps(header).encode() + b"\n")
            digest = hashlib.sha256()
            for start, length in extents(fd, offset, size):
                writer.write(RECORD.pack(start, length))
                done = 0
                while done < length:
                    chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK, length - done), start + done)
                    if not chunk:
                        raise TransferError(f"{source} shrank while it was sent")
                    digest.update(chunk)
                    writer.write(chunk)
                    await writer.drain()
                    done += len(chunk)
                    report(len(chunk))
            writer.write(RECORD.pack(0, 0) + digest.digest())
            await writer.drain()
        finally:
            os.close(fd)
    writer.write(b'{"end": true}\n')
    await writer.drain()
    answer = await reader.readline()
    try:
        reply = json.loads(answer)
    except ValueError:
        raise TransferError("the receiving node closed the stream before it answered") from None
    if not reply.get("ok"):
        raise TransferError(reply.get("error") or "the receiving node refused the files")


async def receive_files(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        place: Callable[[dict], Path], done: Callable[[dict, Path], None],
                        report: Callable[[int], None] = lambda n: None) -> list[dict]:
    """Write each file the stream brings where ``place(header)`` says, check it, hand it to
    ``done(header, path)``; answer the sender. Returns the headers received."""
    received = []
    try:
        while True:
            line = await reader.readline()
            if not line:
                raise TransferError("the sending node closed the stream in the middle")
            header = json.loads(line)
            if header.get("end"):
                break
            path = place(header)
            await _receive_one(reader, header, path, report)
            done(header, path)
            received.append(header)
    except (TransferError, ValueError, OSError, asyncio.IncompleteReadError) as exc:
        message = str(exc) if not isinstance(exc, asyncio.IncompleteReadError) else \
            "the sending node closed the stream in the middle"
        try:
            writer.write(json.dumps({"error": message}).encode() + b"\n")
            await writer.drain()
        except ConnectionError:
            pass
        raise TransferError(message) from None
    writer.write(b'{"ok": true}\n')
    await writer.drain()
    return received


async def _read_up_to(reader, size: int) -> bytes:
    """``size`` bytes, gathered from reads of what the connection has (64 KiB at most
    each): one write and one thread hop per MiB, not per read."""
    pieces, got = [], 0
    while got < size:
        piece = await reader.read(size - got)
        if not piece:
            raise TransferError("the sending node closed the stream in the middle")
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


async def _receive_one(reader: asyncio.StreamReader, header: dict, path: Path,
                       report: Callable[[int], None]) -> None:
    size, offset = int(header["size"]), int(header.get("offset", 0))
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if offset == 0 else 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.ftruncate(fd, size)  # the holes stay holes
        digest = hashlib.sha256()
        while True:
            start, length = RECORD.unpack(await reader.readexactly(RECORD.size))
            if length == 0:
                break
            if start + length > size:
                raise TransferError(f"{header['path']}: data beyond its size")
            done = 0
            while done < length:
                chunk = await _read_up_to(reader, min(CHUNK, length - done))
                digest.update(chunk)
                await asyncio.to_thread(os.pwrite, fd, chunk, start + done)
                done += len(chunk)
                report(len(chunk))
        expected = await reader.readexactly(32)
        if expected != digest.digest():
            raise TransferError(f"{header['path']}: the bytes received do not match their sha256")
        await asyncio.to_thread(os.fsync, fd)
    finally:
        os.close(fd)


def file_digest(path: Path) -> str:
    """The sha256 of a file, kept beside it (``NAME.sha256``) once computed."""
    sidecar = path.with_name(f"{path.name}.sha256")
    try:
        text = sidecar.read_text().split()
        if text and len(text[0]) == 64:
            return text[0]
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    try:
        sidecar.write_text(f"{digest.hexdigest()}  {path}\n")
    except OSError:
        pass
    return digest.hexdigest()
