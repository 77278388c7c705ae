"""The daemon's live link to one cloud-hypervisor: its event monitor and its exit.

cloud-hypervisor writes its events (pretty JSON objects, a blank line
between them) to ``ch-events.json``; the watch reads what is new there
(``vm`` ``paused``, ``resumed``, ``shutdown``) and learns of the process's end
from a pidfd, on the daemon's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Callable

from virshle_core import logger
from virshle_core.models import VmWatch

from .vmm import _clean, _stop_console_keeper, alive, paths, read_pid

READ_EVERY = 0.5
STATES = {("vm", "paused"): "paused", ("vm", "resumed"): "running", ("vm", "booted"): "running"}


class ChWatch(VmWatch):
    def __init__(self, vm, pid: int):
        self.vm = vm
        self.pid = pid
        self.offset = 0
        self.buffer = ""
        self.powered_off = False
        self.stopping = False
        self.exited: asyncio.Event | None = None

    def _new_events(self) -> list[dict]:
        try:
            with open(paths(self.vm)["events"]) as handle:
                handle.seek(self.offset)
                text = handle.read()
                self.offset = handle.tell()
        except OSError:
            return []
        self.buffer += text
        *blocks, self.buffer = self.buffer.split("\n\n")
        found = []
        for block in blocks:
            with contextlib.suppress(ValueError):
                found.append(json.loads(block))
        return found

    async def follow(self, report: Callable[[str], None]) -> str:
        loop = asyncio.get_running_loop()
        self.exited = asyncio.Event()
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return "crashed"
        loop.add_reader(pidfd, self.exited.set)
        try:
            self._new_events()  # what happened before we came: its state is read once
            report("running")
            while not self.exited.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.exited.wait(), READ_EVERY)
                for event in self._new_events():
                    key = (event.get("source"), event.get("event"))
                    logger.debug("VM {}: cloud-hypervisor event {}/{}", self.vm.name, *key)
                    if key in (("vm", "shutdown"), ("vmm", "shutdown")):
                        self.powered_off = True
                    elif key in STATES and not self.powered_off:
                        report(STATES[key])
        finally:
            loop.remove_reader(pidfd)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
            os.close(pidfd)
        await asyncio.to_thread(_stop_console_keeper, self.vm)
        _clean(self.vm)
        return "shutdown" if self.stopping or self.powered_off else "crashed"

    async def stop(self, force: bool, timeout: float) -> None:
        from .api import ChApi, ChApiError

        self.stopping = True
        api = ChApi(str(paths(self.vm)["api"]), timeout=5)
        if not force:
            with contextlib.suppress(ChApiError, OSError):
                await asyncio.to_thread(api.power_button)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.exited.wait(), timeout)
        if not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            await asyncio.wait_for(self.exited.wait(), 30)


def watch(vm) -> ChWatch | None:
    p = paths(vm)
    pid = read_pid(p["pid"])
    if pid is None or not alive(pid, str(p["api"])):
        return None
    return ChWatch(vm, pid)
