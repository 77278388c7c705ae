"""The live state of running VMs, kept by the daemon from their VMMs' own events.

For each running VM a hypervisor plugin's ``virshle_vm_watch`` gives a
watch; its ``follow`` runs as a task on the daemon's loop for as long as the
VMM lives, and reports each state the VM enters. The tracker records it in
the store and announces ``vm-state-changed``; when the VMM ends on its own
(the guest powered off, the process was killed) the VM's NICs go too. So a
listing reads the store and never asks a VMM, and a stop is a signal (or
the power button) plus a wait on the exit the watch sees, on the loop,
without a thread per stop.

While an operation holds a VM's lock it records the state it leaves, and
the tracker stays out of its way. VMs no watch follows (a plugin without
``virshle_vm_watch``) are polled by the supervisor instead.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .. import events
from ..vm import lifecycle
from ..errors import NotFound
from ..log import logger
from ..hooks import plugins
from ..wire.refs import VmRef

if TYPE_CHECKING:
    from .node import Node



class Tracker:
    def __init__(self, node: "Node"):
        self.node = node
        self.watches: dict[str, object] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        # one VM's reports are recorded in the order they came: "paused" then "running" heard
        # together must not race each other to the store
        self.recording: dict[str, asyncio.Lock] = {}

    def following(self, uuid: str) -> bool:
        return uuid in self.watches

    async def follow(self, vm) -> bool:
        """Start following a running VM; False when no plugin offers a watch for it."""
        if vm.uuid in self.tasks:
            return True
        try:
            watch = plugins().vm_watch(vm=vm, node=self.node.context)
        except Exception as exc:
            logger.warning("VM {}: no watch ({}); it is polled instead", vm.name, exc)
            return False
        if watch is None:
            return False
        self.watches[vm.uuid] = watch
        self.tasks[vm.uuid] = asyncio.create_task(self._follow(vm, watch), name=f"watch-{vm.name}")
        return True

    async def _follow(self, vm, watch) -> None:
        uuid = vm.uuid

        def report(state: str) -> None:
            asyncio.ensure_future(self._record(uuid, state))

        final = None
        try:
            final = await watch.follow(report)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.opt(exception=True).error("VM {}: following its VMM failed", vm.name)
        finally:
            self.watches.pop(uuid, None)
            self.tasks.pop(uuid, None)
        if final:
            await self._record(uuid, final, ended=True)

    async def _record(self, uuid: str, state: str, ended: bool = False) -> None:
        lock = self.recording.setdefault(uuid, asyncio.Lock())
        async with lock:
            await self._record_one(uuid, state, ended)
        if not lock.locked() and uuid not in self.tasks:
            self.recording.pop(uuid, None)

    async def _record_one(self, uuid: str, state: str, ended: bool) -> None:
        if self.node.busy(uuid):
            return  # an operation is under way: it records the state it leaves
        try:
            vm = await self.node.run(self.node.store.get, VmRef("uuid", uuid))
        except NotFound:
            return
        if vm.pending:
            return
        if ended:  # the VMM is gone: so are its NICs
            await self.node.run(lifecycle.detach_all, self.node.context, vm)
        if ended and state == "crashed":  # a VMM killed mid-write (a savevm) leaks clusters
            from ..host.images import repair_leaks

            await self.node.run(repair_leaks, vm)
        if vm.state == state:
            return
        old = vm.state
        await self.node.run(self.node.store.update, vm, state=state)
        logger.info("VM {} is now {} (was {})", vm.name, state, old)
        events.emit(events.VM_STATE_CHANGED, self.node.name, vm=vm.to_json(), old=old,
                    new=state)

    async def stop(self, vm, force: bool, timeout: float) -> bool:
        """Stop a followed VM through its watch; False when none follows it."""
        watch = self.watches.get(vm.uuid)
        if watch is None:
            return False
        task = self.tasks.get(vm.uuid)
        await watch.stop(force, timeout)
        if task is not None:
            await asyncio.wait({task}, timeout=10)
        return True

    async def let_go(self, vm) -> None:
        """Stop following one VM (its VMM goes on: another operation ends it)."""
        task, watch = self.tasks.get(vm.uuid), self.watches.get(vm.uuid)
        if task is None:
            return
        task.cancel()
        if watch is not None:
            try:
                await watch.close()
            except Exception as exc:
                logger.warning("VM {}: closing its watch failed: {}", vm.name, exc)
        await asyncio.wait({task}, timeout=5)

    async def close(self) -> None:
        """Let go of every VMM (they keep running), as the daemon stops."""
        for uuid, task in list(self.tasks.items()):
            watch = self.watches.get(uuid)
            task.cancel()
            if watch is not None:
                try:
                    await watch.close()
                except Exception as exc:
                    logger.warning("closing a watch failed: {}", exc)
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=5)
