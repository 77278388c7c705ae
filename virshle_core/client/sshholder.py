"""The process that holds an SSH connection between commands (``sshhold.py`` says how it
is found and started): it logs in once, then serves its unix socket, one channel to the
remote daemon's socket per stream asked for, until it has been idle ``persist`` seconds."""

from __future__ import annotations

import os
import socket
import struct
import sys
from pathlib import Path

from .sshhold import READY_TIMEOUT, Endpoint, endpoint


async def hold(node: str, target: Endpoint, held: Path, persist: float) -> None:
    import asyncio

    from .ssh import _connect  # first: it imports asyncssh without its DSA warnings

    import asyncssh

    connection = await _connect(node, target)
    loop = asyncio.get_running_loop()
    streams = 0
    idle_since = loop.time()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal streams, idle_since
        peer = writer.get_extra_info("socket")
        uid = struct.unpack("3i", peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid != os.getuid():  # another user's process: never theirs to use
            writer.close()
            return
        streams += 1
        try:
            path = (await asyncio.wait_for(reader.readline(), READY_TIMEOUT)).decode().strip()
            try:
                remote_reader, remote_writer = await asyncio.wait_for(
                    connection.open_unix_connection(path), READY_TIMEOUT)
            except asyncssh.ChannelOpenError as exc:
                reason = exc.reason or "connect failed"
                missing = "no such file" in reason.lower() or "not found" in reason.lower()
                kind = "socket_not_found" if missing else "offline"
                writer.write(f"error {kind} node {node!r}: {target.alias} cannot open {path} "
                             f"({reason})\n".encode())
                await writer.drain()
                return
            writer.write(b"ok\n")
            await writer.drain()
            await asyncio.gather(_pump(reader, remote_writer), _pump(remote_reader, writer))
        except (OSError, asyncio.TimeoutError, asyncssh.Error):
            pass
        finally:
            streams -= 1
            idle_since = loop.time()
            writer.close()

    partial = held.with_name(f".{os.getpid()}.sock")
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(serve, path=str(partial))
    finally:
        os.umask(old_umask)
    os.replace(partial, held)  # ready before it is seen
    held.with_suffix(".lock").unlink(missing_ok=True)  # the next holder may start when I end
    mine = held.stat().st_ino
    closed = asyncio.ensure_future(connection.wait_closed())
    try:
        while not closed.done():
            await asyncio.sleep(0.25)
            if streams == 0 and loop.time() - idle_since > persist:
                break
            try:
                if held.stat().st_ino != mine:
                    break  # another holder took the name: leave it to that one
            except FileNotFoundError:
                break
    finally:
        server.close()
        try:
            if held.stat().st_ino == mine:
                held.unlink()
        except FileNotFoundError:
            pass
        connection.close()


async def _pump(reader, writer) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        try:
            writer.write_eof()
        except Exception:
            pass


def main(argv: list[str]) -> int:
    import asyncio

    node, url, held, persist = argv
    target = endpoint(url)
    try:
        asyncio.run(hold(node, target, Path(held), float(persist)))
    except Exception as exc:  # the command that comes next connects afresh, and says why
        print(f"holding {target} for node {node!r} failed: "
              f"{getattr(exc, 'message', exc)}", file=sys.stderr)
        Path(held).with_suffix(".lock").unlink(missing_ok=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
