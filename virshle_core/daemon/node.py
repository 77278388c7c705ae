"""The node as its daemon holds it: the configuration, the store, a lock per VM, the
worker threads that blocking work (the store, plugin hooks) runs in, and the operations
on its VMs (``lifecycle.py``'s, run there).

Routes, the state tracker and the supervisor all work through it, the same way:
resolve a VM, lock it, run the operation.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from ..vm import disks, lifecycle, control as verbs
from .. import progress
from . import access
from ..models import NodeContext
from ..wire.refs import VmRef

if TYPE_CHECKING:
    from ..wire.api import CloneRequest, CreateRequest, Snapshot, VmChange
    from ..config import Config
    from ..models import Vm
    from ..store.store import Store


class Node:
    def __init__(self, config: "Config", name: str = "default"):
        self.name = name
        self.config = config
        self.context = NodeContext(name=name, config=config)  # what hooks receive
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.work: set[asyncio.Future] = set()  # blocking operations running in threads
        self.flags: set[progress.CancelFlag] = set()  # cancel flags of creates in flight
        self.closing = False

    @property
    def id(self) -> str:
        """``<root>/node-id``, read at start-up (empty before): which daemon this is, and the
        mark of what it makes on the host."""
        return self.context._id

    @id.setter
    def id(self, value: str) -> None:
        self.context.id = value

    @property
    def store(self) -> "Store | None":
        """The node's store, opened at start-up; hooks see it as ``node.vms()``."""
        return self.context.store

    @store.setter
    def store(self, store: "Store | None") -> None:
        self.context.store = store

    def reload(self) -> "Config":
        """Read the configuration file again and put it in force for new operations (running
        VMs are not touched). A file that does not validate is refused whole: ConfigError,
        with each problem's file:line, and the configuration in force stays."""
        from ..config import load_config
        from ..errors import ConfigError
        from ..hooks import config_sections, hypervisor_names

        new = load_config(self.config.path, config_sections(), hypervisor_names())
        for what, old_value, new_value in (
                ("[host] root", self.config.host.root_path, new.host.root_path),
                ("[host] name", self.config.host.name, new.host.name)):
            if old_value != new_value:
                raise ConfigError(f"{what} changed from {old_value} to {new_value}: a running "
                                  "daemon keeps its own", "Restart `virshle node serve` for it.")
        self.config = self.context.config = new
        return new

    # --- resolve, lock -----------------------------------------------------------------

    async def find(self, ref: str) -> "Vm":
        """The VM ``ref`` names (``id:7``, ``name:web``, ``uuid:…`` or bare), when the caller
        may act on it (its owner, or an admin: ``access.py``)."""
        vm = await self.run(self.store.get, VmRef.parse(ref))
        access.check_owner(vm)
        return vm

    @asynccontextmanager
    async def locked(self, ref: str, moving: bool = False) -> AsyncIterator["Vm"]:
        """The VM ``ref`` names, read again once its lock is held; the lock is held inside.
        A VM that is moving to another node is refused (409 ``vm_moving``) but to the
        move's own routes (``moving``)."""
        vm = await self.find(ref)
        async with self.locks[vm.uuid]:
            vm = await self.run(self.store.get, VmRef("uuid", vm.uuid))
            if vm.moving_to and not moving:
                from ..vm.migration import busy

                raise busy(vm)
            yield vm

    def busy(self, uuid: str) -> bool:
        """Whether an operation holds this VM's lock (it records the state it leaves)."""
        lock = self.locks.get(uuid)
        return lock is not None and lock.locked()

    def forget(self, uuid: str) -> None:
        """The VM is gone: so is its lock."""
        self.locks.pop(uuid, None)

    # --- run ---------------------------------------------------------------------------

    async def run(self, func: Callable, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(func, *args, **kwargs)

    async def run_to_end(self, func: Callable, *args: Any, flag: progress.CancelFlag | None = None,
                         reporter: progress.Reporter | None = None) -> Any:
        """Run ``func`` in a thread; it always finishes before this returns or raises.

        When the caller is cancelled (its client went away, or the daemon
        stops), ``flag`` is raised so the work stops at its next step and
        undoes itself; the lock the caller holds is kept until then.
        """
        def work() -> Any:
            progress.set_cancel(flag)
            progress.set_reporter(reporter)
            try:
                return func(*args)
            finally:
                progress.set_reporter(None)
                progress.set_cancel(None)

        future = asyncio.get_running_loop().run_in_executor(None, work)
        self.work.add(future)
        future.add_done_callback(self.work.discard)
        if flag is not None:
            self.flags.add(flag)
            if self.closing:
                flag.cancel("the node daemon is shutting down")
        cancelled = False
        try:
            while not future.done():
                try:
                    await asyncio.wait({future})
                except asyncio.CancelledError:
                    cancelled = True
                    if flag is not None:
                        flag.cancel(self.why_cancelled())
        finally:
            if flag is not None:
                self.flags.discard(flag)
        if cancelled:
            raise asyncio.CancelledError
        return future.result()

    # --- the operations: each holds the VM's lock in its caller, and runs to its end ---

    async def create(self, request: "CreateRequest", flag: progress.CancelFlag | None = None,
                     reporter: progress.Reporter | None = None) -> list["Vm"]:
        return await self.run_to_end(lifecycle.create, self.context, request, access.owner_uid(),
                                     flag=flag, reporter=reporter)

    async def start(self, vm: "Vm") -> "Vm":
        return await self.run_to_end(lifecycle.start, self.context, vm)

    async def stop(self, vm: "Vm", force: bool) -> tuple["Vm", bool]:
        return await self.run_to_end(lifecycle.stop, self.context, vm, force)

    async def finish_stop(self, vm: "Vm", state: str, force: bool) -> "Vm":
        """Record what a stop leaves (NICs detached, the state) once its VMM has exited."""
        return await self.run_to_end(lifecycle.finish_stop, self.context, vm, state, force)

    async def change(self, vm: "Vm", change: "VmChange") -> "Vm":
        return await self.run_to_end(verbs.change, self.context, vm, change)

    async def control(self, vm: "Vm", action: str, force: bool = False) -> "Vm":
        """Pause, resume or reboot."""
        return await self.run_to_end(verbs.control, self.context, vm, action, force)

    async def disk_resize(self, vm: "Vm", disk: str, size: int | None, grow: int | None) -> "Vm":
        return await self.run_to_end(disks.disk_resize, self.context, vm, disk, size, grow)

    async def snapshot(self, vm: "Vm", action: str, name: str, memory: bool = False
                       ) -> "Snapshot | Vm":
        """Take (``create``), ``restore`` or ``delete`` a snapshot."""
        if action == "create":
            return await self.run_to_end(disks.snapshot_create, self.context, vm, name, memory)
        work = disks.snapshot_restore if action == "restore" else disks.snapshot_delete
        return await self.run_to_end(work, self.context, vm, name)

    async def clone(self, vm: "Vm", request: "CloneRequest", flag: progress.CancelFlag | None = None,
                    reporter: progress.Reporter | None = None) -> "Vm":
        return await self.run_to_end(verbs.clone, self.context, vm, request, access.owner_uid(),
                                     flag=flag, reporter=reporter)

    async def delete(self, vm: "Vm", force: bool) -> "Vm":
        vm = await self.run_to_end(lifecycle.delete, self.context, vm, force)
        self.forget(vm.uuid)
        return vm

    async def refresh(self, vm: "Vm") -> "Vm":
        """The VM's state read from its VMM, recorded and announced when it changed."""
        return await self.run(lifecycle.refresh, self.context, vm)

    def why_cancelled(self) -> str:
        return "the node daemon is shutting down" if self.closing else "the client went away"

    def shut_down(self) -> None:
        """Refuse new work's progress: creates in flight stop and undo themselves."""
        self.closing = True
        for flag in list(self.flags):
            flag.cancel("the node daemon is shutting down")

    def unfinished(self) -> list[asyncio.Future]:
        return [future for future in self.work if not future.done()]
