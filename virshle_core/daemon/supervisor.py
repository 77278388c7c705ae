"""What the daemon does between requests: notice VMM exits, state changes and new
leases, keep console logs under their cap, reap orphans; and, at start, re-adopt the
VMs that kept running while no daemon was there."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .. import events
from ..vm import lifecycle
from ..log import logger
from ..models import NodeContext
from .node import Node
from .tracker import Tracker

LOG_CAP = 1024 * 1024
SUPERVISE_EVERY = 1.0
LEASE_EVERY = 2  # supervisor rounds between two lease queries


class Supervisor:
    def __init__(self, node: Node, tracker: Tracker):
        self.node = node
        self.tracker = tracker
        self.known_ips: dict[str, set[str]] = {}

    async def run(self) -> None:
        """Notice VMM exits, state changes and new leases; keep console logs under their cap."""
        rounds = 0
        zombies: set[int] = set()
        while True:
            await asyncio.sleep(SUPERVISE_EVERY)
            rounds += 1
            try:
                zombies = reap_orphans(zombies)
                vms = await self.node.run(self.node.store.all)
                for vm in vms:
                    if self.node.busy(vm.uuid):
                        continue  # an operation on it is under way
                    if vm.state in ("running", "paused") and not self.tracker.following(vm.uuid):
                        # no watch follows it (a plugin without one): ask its VMM
                        await self.node.refresh(vm)
                        if vm.state in ("running", "paused"):
                            await self.tracker.follow(vm)
                    await self.node.run(rotate_console_log, self.node.context, vm)
                if rounds % LEASE_EVERY == 0:
                    await self.node.run(self._watch_leases, [vm for vm in vms if vm.state == "running"])
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.opt(exception=True).error("supervisor pass failed")

    def _watch_leases(self, running: list) -> None:
        """Announce ``lease-acquired`` when a running VM shows an address it did not have."""
        running = [vm for vm in running if vm.nets]
        if not running:
            self.known_ips.clear()
            return
        lifecycle.with_ips(self.node.context, running)
        alive = set()
        for vm in running:
            alive.add(vm.uuid)
            known = self.known_ips.setdefault(vm.uuid, set())
            for ip in vm.ips:
                if ip not in known:
                    known.add(ip)
                    mac = next((n.mac for n in vm.nets if n.mac), None)
                    logger.info("VM {} got the address {}", vm.name, ip)
                    events.emit(events.LEASE_ACQUIRED, self.node.name, vm=vm.to_json(), ip=ip, mac=mac)
        for uuid in set(self.known_ips) - alive:
            del self.known_ips[uuid]

    async def readopt(self) -> None:
        """At start: read every VM's true state; running VMMs are ours again."""
        vms = await self.node.run(self.node.store.all)
        running = 0
        for vm in vms:
            vm = await self.node.refresh(vm)
            if vm.state in ("running", "paused"):
                running += 1
                await self.tracker.follow(vm)
        if vms:
            logger.info("re-adopted {} running VM(s) of {}", running, len(vms))


def become_subreaper() -> None:
    """VMMs that daemonise are re-parented to this daemon, not to PID 1.

    Some PID 1s (containers) never reap orphans, and every stopped VMM would
    stay a zombie; the hypervisor plugins reap their VMMs when they see them
    end (``os.waitpid(pid, WNOHANG)``).
    """
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            logger.debug("prctl(PR_SET_CHILD_SUBREAPER) failed: errno {}", ctypes.get_errno())
    except (OSError, AttributeError):
        pass


def reap_orphans(seen: set[int]) -> set[int]:
    """Reap children that ended and that nobody waits for; return the new zombies.

    The daemon is a subreaper: the intermediate process of a VMM that
    daemonises (QEMU forks twice) and VMMs of a previous daemon land here.
    A zombie is reaped on the second pass that sees it, so a child a worker
    thread is about to ``wait()`` for (``subprocess.run``) is never taken.
    """
    me = os.getpid()
    now: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return now
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            now.add(int(name))
    for pid in now & seen:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    return now - seen


def rotate_console_log(node: NodeContext, vm) -> None:
    """Copy-and-truncate a console log over its cap (the VMM appends, so it writes on)."""
    log = Path(vm.dir) / "console.log"
    try:
        if log.stat().st_size <= LOG_CAP:
            return
    except FileNotFoundError:
        return
    import shutil

    shutil.copyfile(log, log.with_name("console.log.1"))
    with open(log, "r+b") as handle:
        handle.truncate(0)
