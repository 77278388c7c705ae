"""The live parts: every node's event stream merged into one for the browsers, and a VM's
serial console carried between the browser's WebSocket and the node's."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from virshle_core import logger


class Events:
    """One reader thread per node follows its ``GET /events``; each line goes, with the
    node's name, to every browser listening (a queue each). A node that drops is asked
    again after a pause; no listing is polled."""

    def __init__(self, settings, loop: asyncio.AbstractEventLoop):
        self.settings, self.loop = settings, loop
        self.listeners: set[asyncio.Queue] = set()
        self.stopping = threading.Event()

    def start(self) -> None:
        for client in self.settings.clients():
            threading.Thread(target=self._follow, args=(client,), daemon=True,
                             name=f"events-{client.name}").start()

    def _follow(self, client) -> None:
        while not self.stopping.is_set():
            try:
                response = client.events()
                try:
                    for line in response.iter_lines():
                        if self.stopping.is_set():
                            return
                        if line.strip():
                            self.loop.call_soon_threadsafe(self._send, client.name, line)
                finally:
                    response.close()
            except Exception as exc:  # offline for now: the fleet page says why
                logger.debug("web: events of node {}: {}", client.name, exc)
            self.stopping.wait(2)

    def _send(self, node: str, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        event["node"] = node  # this command line's name for it
        for queue in list(self.listeners):
            if queue.qsize() < 1000:  # a browser that stopped reading loses events, not memory
                queue.put_nowait(event)

    def listen(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self.listeners.add(queue)
        return queue

    def stop(self) -> None:
        self.stopping.set()


async def console(browser, client, uuid: str) -> None:
    """Carry bytes both ways between the browser's WebSocket (aiohttp) and the node's
    console (the client's blocking WebSocket, read in a thread) until either ends."""
    import aiohttp

    node_side = await asyncio.to_thread(client.console, uuid)
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()

    def node_to_browser() -> None:
        try:
            while True:
                data = node_side.recv()
                if data is None:
                    break
                asyncio.run_coroutine_threadsafe(browser.send_bytes(bytes(data)), loop).result(10)
        except Exception as exc:
            logger.debug("web: console of {} ended: {}", uuid, exc)
        finally:
            loop.call_soon_threadsafe(ended.set)

    threading.Thread(target=node_to_browser, daemon=True, name=f"console-{uuid}").start()
    try:
        async for message in browser:
            if message.type == aiohttp.WSMsgType.BINARY:
                await asyncio.to_thread(node_side.send, message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                await asyncio.to_thread(node_side.send, message.data.encode())
            else:
                break
            if ended.is_set():
                break
    finally:
        try:
            node_side.close()
        except Exception:
            pass
        await asyncio.wait_for(ended.wait(), 5) if not ended.is_set() else None


def sse(event: dict) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


def keepalive() -> bytes:
    return f": {int(time.time())}\n\n".encode()
