"""The daemon's live link to one QEMU: its QMP events and its exit, on the daemon's loop.

One long-lived QMP connection per running VM (``qmp.sock``) carries QEMU's
events: ``STOP`` and ``RESUME`` (paused, running), ``SHUTDOWN`` (the guest
powered off: QEMU runs with ``-no-shutdown``, so it is then asked to quit),
``RESET``, and ``GUEST_PANICKED`` (crashed). A pidfd says when the process
ends, without polling; the daemon reaps it when it is its child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Callable

from virshle_core import logger
from virshle_core.models import VmWatch

from .control import REBOOTING
from .vmm import _clean, alive, paths, read_pid

STATUS = {"running": "running", "debug": "running", "shutdown": "shutdown",
          "internal-error": "crashed", "guest-panicked": "crashed", "io-error": "crashed"}


class QemuWatch(VmWatch):
    def __init__(self, vm, pid: int):
        self.vm = vm
        self.pid = pid
        self.client = None
        self.exited: asyncio.Event | None = None
        self.powered_off: asyncio.Event | None = None
        self.stopping = False

    async def follow(self, report: Callable[[str], None]) -> str:
        from qemu.qmp import QMPClient

        loop = asyncio.get_running_loop()
        self.exited, self.powered_off = asyncio.Event(), asyncio.Event()
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return "crashed"
        loop.add_reader(pidfd, self.exited.set)
        events = None
        try:
            if not alive(self.pid, self.vm):  # its pid was taken over since the pidfile
                return "crashed"
            self.client = QMPClient(self.vm.name)
            # QMP beside the exit, never before it: a QEMU that dies (or hangs) while QMP is
            # being set up must still be seen to end
            events = asyncio.create_task(self._listen(report))
            await self.exited.wait()
        finally:
            loop.remove_reader(pidfd)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)  # ours to reap, if our child
            os.close(pidfd)
            if events is not None:
                events.cancel()
                with contextlib.suppress(BaseException):
                    await events
            await self._disconnect()
        _clean(self.vm)
        return "shutdown" if self.stopping or self.powered_off.is_set() else "crashed"

    async def _listen(self, report: Callable[[str], None]) -> None:
        """Connect to QMP, report the status, then each event, until cancelled."""
        try:
            await asyncio.wait_for(self.client.connect(str(paths(self.vm)["qmp"])), 10)
            status = (await asyncio.wait_for(self.client.execute("query-status"), 10))["status"]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # QMP unreachable: the exit is still seen
            logger.warning("VM {}: no QMP connection ({}); following its process only",
                           self.vm.name, exc)
            return
        report(STATUS.get(status, "paused"))
        await self._events(report)

    async def _events(self, report: Callable[[str], None]) -> None:
        async for event in self.client.events:
            name = event["event"]
            logger.debug("VM {}: QMP event {}", self.vm.name, name)
            if name == "SHUTDOWN" and self.vm.uuid in REBOOTING:
                continue  # a graceful reboot: QEMU is reset, not ended (control.py)
            if name == "SHUTDOWN":
                self.powered_off.set()
                report("shutdown")
                with contextlib.suppress(Exception):  # -no-shutdown kept it: end the process
                    await self.client.execute("quit")
            elif name == "STOP" and not self.powered_off.is_set():
                report("paused")
            elif name in ("RESUME", "RESET") and not self.powered_off.is_set():
                report("running")
            elif name == "GUEST_PANICKED":
                report("crashed")

    async def stop(self, force: bool, timeout: float) -> None:
        self.stopping = True
        if not force and self.client is not None:
            with contextlib.suppress(Exception):
                if (await self.client.execute("query-status"))["status"] == "paused":
                    await self.client.execute("cont")  # a paused guest hears no power button
                await self.client.execute("system_powerdown")
            ended = asyncio.ensure_future(self.exited.wait())
            off = asyncio.ensure_future(self.powered_off.wait())
            await asyncio.wait({ended, off}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (ended, off):
                waiter.cancel()
            if self.powered_off.is_set() and not self.exited.is_set():
                with contextlib.suppress(Exception):
                    await self.client.execute("quit")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.exited.wait(), 5)
        if not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            await asyncio.wait_for(self.exited.wait(), 30)

    async def close(self) -> None:
        await self._disconnect()

    async def _disconnect(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()


def watch(vm) -> QemuWatch | None:
    pid = read_pid(vm)
    if pid is None or not alive(pid, vm):
        return None
    return QemuWatch(vm, pid)
