"""``virshle node serve``: the node's HTTP/1.1 + JSON API on its unix socket.

Phases, as uvicorn's:

- start-up: take the root's lock (``daemon.lock``, one daemon per root),
  apply the file modes, open and check the store, reconcile what a crash
  interrupted (``virshle_core.vm.reconcile``), re-adopt running VMs, bind the
  socket with mode 0660 and group ``virshle``;
- the main loop: serve until SIGTERM or SIGINT;
- shut-down, within ``SHUTDOWN_TIMEOUT``: cancel the creates in flight
  (they undo themselves), end the event, console and log streams, stop
  accepting, let the other requests finish, and only then close the store
  and remove the socket (if it is still ours).

Blocking work (the store, plugin hooks) runs in worker threads; operations
on one VM are serialised by a per-VM lock, and a handler whose client goes
away still waits for its work to finish (a create is cancelled and undone).
"""

from __future__ import annotations

import asyncio
import grp
import os
import signal
import socket
from pathlib import Path

from ..vm.reconcile import reconcile
from ..config import Config
from ..errors import VirshleError
from ..log import logger
from . import nodeinfo
from .http import Server
from .node import Node
from .routes import Api
from .streams import Streams
from .supervisor import Supervisor, become_subreaper
from .tracker import Tracker

SHUTDOWN_TIMEOUT = 30.0
"""Seconds from SIGTERM to exit, at most (documented in docs/api.md)."""
HEADER_TIMEOUT = 10.0
"""Seconds a new connection has to send a whole request head (slow clients are cut)."""
MAX_BODY = 16 * 1024**2


class NodeDaemon:
    """The node, its tracker, streams, API and supervisor, put together and served."""

    def __init__(self, config: Config, node_name: str = "default"):
        self.config = config
        self.node = Node(config, node_name)
        self.tracker = Tracker(self.node)
        self.streams = Streams(self.node)
        self.api = Api(self.node, self.tracker, self.streams)
        self.supervisor = Supervisor(self.node, self.tracker)

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        socket_path = self.config.host.socket_path
        root = self.config.host.root_path
        if not root.is_dir():
            raise VirshleError(f"{root} does not exist",
                               "Run `virshle node init --all` first.", code="not_initialized")
        os.umask(0o027)  # everything the daemon and its VMMs make: nothing for other users
        _raise_descriptor_limit()
        from concurrent.futures import ThreadPoolExecutor

        # blocking pieces (the store, NIC plugins) of many concurrent operations: waits on VMMs
        # happen on the loop, so these threads are short-lived work, not one per stop
        loop.set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="virshle"))
        lock = _take_lock(root)
        try:
            await self._start_up(root, socket_path)
            server = Server(self.api.handle, header_timeout=HEADER_TIMEOUT, max_body=MAX_BODY)
            bound = await _bind(server, socket_path)
        except BaseException:
            if self.node.store is not None:
                self.node.store.close()
            os.close(lock)
            raise
        supervisor = asyncio.create_task(self.supervisor.run())
        autostart = asyncio.create_task(self._autostart())
        services = self._start_services()
        logger.info("node {!r} serving on {} ({} VMs)", self.node.name, socket_path,
                    self.node.store.count())

        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)
        try:
            await stop.wait()
        finally:
            deadline = loop.time() + SHUTDOWN_TIMEOUT
            logger.info("shutting down: undoing creates in flight, finishing other requests")
            self.node.shut_down()
            supervisor.cancel()
            autostart.cancel()
            for service in services:
                service.cancel()
            if services:
                await asyncio.wait(services, timeout=5)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.streams.end()
            await server.close(timeout=SHUTDOWN_TIMEOUT * 2 / 3)
            await self.tracker.close()  # the VMMs keep running; the next daemon follows them
            unfinished = self.node.unfinished()
            if unfinished:
                await asyncio.wait(unfinished, timeout=max(0.1, deadline - loop.time()))
            _remove_socket(socket_path, bound)
            unfinished = self.node.unfinished()
            if unfinished:
                # never close the store under a running operation: its journal entry stays,
                # and the next daemon finishes or undoes it
                logger.error("{} operation(s) did not finish within {}s; exiting without them "
                             "(the next start reconciles them)", len(unfinished), SHUTDOWN_TIMEOUT)
                os._exit(1)
            self.node.store.close()
            os.close(lock)
            logger.info("node {!r} stopped", self.node.name)

    def _start_services(self) -> list[asyncio.Task]:
        """The plugins' services (``virshle_services``), each a task for the daemon's life;
        one that fails is logged and the daemon goes on."""
        from ..hooks import plugins

        tasks = []
        for plugin, service in plugins().services(self.node):
            async def run(plugin: str = plugin, service=service) -> None:
                try:
                    await service.run(self.node)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.opt(exception=True).error("plugin {}: service {} failed", plugin,
                                                     service.name)
            tasks.append(asyncio.create_task(run(), name=f"service-{plugin}-{service.name}"))
            logger.info("plugin {}: service {} started", plugin, service.name)
        return tasks

    async def _autostart(self) -> None:
        """Start the VMs marked ``autostart`` that are stopped (the host rebooted, say), one
        after the other, once the daemon serves; a VM that fails is logged, the rest go on."""
        for vm in await self.node.run(self.node.store.all):
            if not vm.autostart or vm.state in ("running", "paused") or vm.pending:
                continue
            try:
                async with self.node.locked(f"uuid:{vm.uuid}") as current:
                    if current.state in ("running", "paused"):
                        continue
                    current = await self.node.start(current)
                    await self.tracker.follow(current)
                logger.info("autostart: started VM {!r}", vm.name)
            except VirshleError as exc:
                logger.error("autostart: VM {!r} did not start: {}", vm.name, exc.message)

    def _reload_on_signal(self) -> None:
        """SIGHUP: ``node reload``; a file that does not validate is logged, with its lines,
        and the configuration in force stays."""
        async def reload() -> None:
            try:
                config = await self.node.run(self.node.reload)
            except VirshleError as exc:
                logger.error("SIGHUP: the configuration was not reloaded: {}", exc.message)
                return
            logger.info("SIGHUP: configuration reloaded from {}", config.path or "the defaults")
            for message in config.warnings:
                logger.warning("{}", message)

        task = asyncio.ensure_future(reload())
        self.node.work.add(task)
        task.add_done_callback(self.node.work.discard)

    async def _start_up(self, root: Path, socket_path: Path) -> None:
        from .init import secure

        changed = await self.node.run(secure, root)
        if changed:
            logger.info("file modes applied under {}: {}", root, "; ".join(changed[:20])
                        + (f" (and {len(changed) - 20} more)" if len(changed) > 20 else ""))
        from ..store.opening import open_node_store

        self.node.store = await self.node.run(open_node_store, self.config.host.db_path,
                                              root / "vm", self.node.name)
        await self.node.run(self.node.store.keep_reserve)
        from .init import node_id

        self.node.id = node_id(root)
        for message in self.config.warnings:  # missing template disks (~: this user's home)
            logger.warning("{}", message)
        become_subreaper()
        nodeinfo.prime_cpu()
        self.streams.start()
        _check_socket_path(socket_path)
        for line in await self.node.run(reconcile, self.node.context):
            logger.warning("reconcile: {}", line)
        await self.supervisor.readopt()


def _raise_descriptor_limit() -> None:
    """Take the whole hard limit of open files: each client holds a descriptor, and 1,024
    (a common soft limit) was once spent by one user's idle sockets. One user (not root)
    holds at most ``http.MAX_PER_USER`` of them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def _take_lock(root: Path) -> int:
    """Hold ``<root>/daemon.lock`` (flock) for the daemon's life: one daemon per root."""
    import fcntl

    path = root / "daemon.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise VirshleError(f"cannot write in {root}: {exc.strerror}",
                           "The node's root must be a writable directory: fix its mount or "
                           "permissions, or set [host] root.", code="root_not_writable") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise VirshleError(f"another node daemon (pid {holder}) already serves {root}",
                           "Stop it first, or give this node another [host] root.",
                           code="already_serving") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _check_socket_path(path: Path) -> None:
    """Clear a stale socket; never delete what is not a socket, nor a live one."""
    import stat

    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a socket"
        raise VirshleError(f"{path} exists and is {kind}",
                           "Move it away: the daemon never deletes what it did not make.",
                           code="socket_path_taken")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        logger.info("removing stale socket {}", path)
        path.unlink()
        return
    finally:
        probe.close()
    raise VirshleError(f"another daemon is already serving on {path}",
                       "Stop it first, or give this node another [host] root.",
                       code="already_serving")


async def _bind(server: Server, path: Path) -> tuple[int, int]:
    """Listen on ``path`` (born 0660, group virshle); return its identity (dev, inode)."""
    old_umask = os.umask(0o117)  # the socket is born 0660, never briefly wider
    try:
        await server.listen(str(path))
    except OSError as exc:
        raise VirshleError(f"cannot listen on {path}: {exc.strerror}",
                           "The node's root must be writable; check its mount and permissions.",
                           code="cannot_listen") from None
    finally:
        os.umask(old_umask)
    _set_mode_and_group(path)
    info = path.stat()
    return info.st_dev, info.st_ino


def _remove_socket(path: Path, bound: tuple[int, int]) -> None:
    """Remove our socket, and only ours (another daemon may have taken the path since)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if (info.st_dev, info.st_ino) == bound:
        path.unlink(missing_ok=True)


def _one_malloc_arena() -> None:
    """Make glibc's allocator keep one arena for every thread.

    Each worker thread that allocates otherwise gets an arena of its own, and what a
    create left there stays resident: eight creates grew the daemon by 6.5 MiB. The GIL
    already serialises nearly all allocation, so one arena costs no contention. Called
    before any thread exists; a libc without ``mallopt`` (musl) is left as it is.
    """
    import ctypes

    M_ARENA_MAX = -8
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


def _set_mode_and_group(path: Path) -> None:
    os.chmod(path, 0o660)
    try:
        gid = grp.getgrnam("virshle").gr_gid
    except KeyError:
        logger.warning("group 'virshle' does not exist; run `virshle node init --dir` so "
                       "its members can use {}", path)
        return
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        logger.warning("cannot give {} to group virshle (not root)", path)


def serve(config: Config, node_name: str = "default") -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    _one_malloc_arena()
    try:
        asyncio.run(NodeDaemon(config, node_name).serve())
    except OSError as exc:  # what start-up did not foresee still gets one line
        where = f" ({exc.filename})" if exc.filename else ""
        raise VirshleError(f"the node daemon could not start: {exc.strerror or exc}{where}",
                           "Check [host] root: it must be a writable directory.",
                           code="cannot_start") from None
