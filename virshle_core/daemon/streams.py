"""The long-lived replies: the event stream, a VM's serial console (a WebSocket) and its
log, followed. They never end by themselves; ``end()`` ends them at shut-down."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

from ..wire import api
from .. import events
from ..vm import lifecycle
from ..errors import Conflict, NotFound, VirshleError
from ..log import logger
from .http import Request, Response, StreamResponse
from .websocket import WebSocketResponse
from . import access
from .node import Node


BACKLOG = 1000
"""Events a stream may have waiting for its reader; past it, the reader is dropped."""


class EventHub:
    """Fans blinker signals out to every ``GET /events`` stream. A reader that lets
    ``BACKLOG`` events wait is dropped: its queue is emptied and ends with a last line
    saying so (``stream-dropped``), so a consumer that never reads holds nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, node: str):
        self.loop = loop
        self.node = node
        self.queues: set[asyncio.Queue] = set()
        for name in events.NAMES:
            import blinker

            blinker.signal(name).connect(self._receive_for(name), weak=False)

    def _receive_for(self, name: str) -> Callable[..., None]:
        def receive(sender: Any, **data: Any) -> None:
            event = {"event": name, "node": sender, **data}  # its fields: events.emit checked them
            line = json.dumps(event, default=str) + "\n"
            owner = (data.get("vm") or {}).get("owner") if isinstance(data.get("vm"), dict) else None
            for queue in list(self.queues):
                self.loop.call_soon_threadsafe(self._put, queue, (owner, line))

        return receive

    def _put(self, queue: asyncio.Queue, item: Any) -> None:
        if queue not in self.queues:
            return
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            self.queues.discard(queue)
            while not queue.empty():
                queue.get_nowait()
            dropped = api.StreamDropped(event="stream-dropped", node=self.node,
                                        reason=f"this reader let {BACKLOG} events wait")
            queue.put_nowait((None, json.dumps(dropped.to_json()) + "\n"))
            queue.put_nowait(None)

    def close(self) -> None:
        for queue in list(self.queues):
            queue.put_nowait(None)


class Streams:
    def __init__(self, node: Node):
        self.node = node
        self.hub: EventHub | None = None  # made on the running loop, at start-up
        self.consoles: set[WebSocketResponse] = set()
        self.follow_tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        self.hub = EventHub(asyncio.get_running_loop(), self.node.name)

    async def end(self) -> None:
        """Shut-down: end the event, console and log streams."""
        if self.hub:
            self.hub.close()
        for ws in list(self.consoles):
            await ws.close(code=1001, message=b"node daemon shutting down")
        for task in list(self.follow_tasks):
            task.cancel()

    async def events(self, request: Request) -> Response:
        if self.hub is None:
            self.start()
        response = StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(maxsize=BACKLOG)
        self.hub.queues.add(queue)
        caller = access.caller()  # a member hears only of its own VMs
        try:
            hello = api.Hello(event="hello", node=self.node.name)
            await response.write(json.dumps(hello.to_json()).encode() + b"\n")
            while True:
                item = await queue.get()
                if item is None:
                    break
                owner, line = item
                if owner is None or caller is None or caller.admin or owner == caller.name:
                    await response.write(line.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.queues.discard(queue)
        return response

    async def console(self, request: Request) -> Response:
        vm = await self.node.find(request.match_info["ref"])
        state = await self.node.run(lifecycle.live_state, self.node.context, vm)
        if state not in ("running", "paused"):
            raise Conflict(f"VM {vm.name!r} is {state}; its console is not live",
                           f"Start it with `virshle vm start {vm.name}`, or read "
                           f"`virshle vm logs {vm.name}`.", code="vm_not_running")
        endpoint = await self.node.run(lifecycle.console, self.node.context, vm)
        if not endpoint.socket:
            raise NotFound(f"VM {vm.name!r} has no interactive console", code="no_console")
        try:
            reader, writer = await asyncio.open_unix_connection(endpoint.socket)
        except OSError as exc:
            raise VirshleError(f"VM {vm.name!r}: cannot reach its console: {exc}",
                               code="console_unreachable") from None
        ws = WebSocketResponse()
        await ws.prepare(request)
        self.consoles.add(ws)
        logger.info("console of VM {} attached", vm.name)

        async def vm_to_client() -> None:
            try:
                while data := await reader.read(65536):
                    await ws.send_bytes(data)
            except ConnectionError:
                pass
            await ws.close()

        pump = asyncio.create_task(vm_to_client())
        try:
            async for message in ws:
                writer.write(message)
                await writer.drain()
        finally:
            pump.cancel()
            writer.close()
            self.consoles.discard(ws)
            logger.info("console of VM {} detached", vm.name)
        return ws

    async def logs(self, request: Request) -> Response:
        vm = await self.node.find(request.match_info["ref"])
        follow = request.query.get("follow", "").lower() in ("1", "true", "yes")
        endpoint = await self.node.run(lifecycle.console, self.node.context, vm)
        path = Path(endpoint.log) if endpoint.log else None
        response = StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        if path is None:
            await response.write_eof()
            return response
        rotated = path.with_name(path.name + ".1")
        if rotated.exists():
            await response.write(await self.node.run(rotated.read_bytes))
        position = 0
        stream = asyncio.current_task()
        self.follow_tasks.add(stream)
        try:
            while True:
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    size = 0
                if size < position:
                    position = 0  # rotated under us: start the new file
                if size > position:
                    with open(path, "rb") as handle:
                        handle.seek(position)
                        data = handle.read(size - position)
                    position += len(data)
                    await response.write(data)
                if not follow:
                    break
                await asyncio.sleep(0.2)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.follow_tasks.discard(stream)
        return response
