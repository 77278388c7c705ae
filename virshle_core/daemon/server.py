"""``virshle node serve``: the node's HTTP/1.1 + JSON API on its unix socket.

Phases, as uvicorn's:

- start-up: take the root's lock (``daemon.lock``, one daemon per root),
  apply the file modes, open and check the store, reconcile what a crash
  interrupted (``lifecycle.reconcile``), re-adopt running VMs, bind the
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
import json
import os
import signal
import socket
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import attrs

from .. import events, lifecycle, progress
from ..config import Config, structure
from ..errors import ConfigError, Conflict, NotFound, UsageError, VirshleError
from ..log import logger
from ..models import NodeContext
from ..refs import VmRef
from ..store import Store
from . import nodeinfo
from .http import (HTTPError, Request, Response, Router, Server, StreamResponse,
                   WebSocketResponse, json_response)
from .openapi import Route, openapi_document

API = "/api/v1"
SHUTDOWN_TIMEOUT = 30.0
"""Seconds from SIGTERM to exit, at most (documented in docs/api.md)."""
HEADER_TIMEOUT = 10.0
"""Seconds a new connection has to send a whole request head (slow clients are cut)."""
MAX_BODY = 16 * 1024**2


@attrs.define
class StopRequest:
    """The body of ``POST /api/v1/vms/{ref}/stop``."""

    force: bool = False


LOG_CAP = 1024 * 1024
SUPERVISE_EVERY = 1.0
LEASE_EVERY = 2  # supervisor rounds between two lease queries


class EventHub:
    """Fans blinker signals out to every ``GET /events`` stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queues: set[asyncio.Queue] = set()
        for name in events.NAMES:
            import blinker

            blinker.signal(name).connect(self._receive_for(name), weak=False)

    def _receive_for(self, name: str) -> Callable[..., None]:
        def receive(sender: Any, **data: Any) -> None:
            event = {"event": name, "node": sender, **data}
            line = json.dumps(event, default=str) + "\n"
            for queue in list(self.queues):
                self.loop.call_soon_threadsafe(queue.put_nowait, line)

        return receive

    def close(self) -> None:
        for queue in list(self.queues):
            queue.put_nowait(None)


class NodeDaemon:
    def __init__(self, config: Config, node_name: str = "default"):
        self.config = config
        self.node = NodeContext(name=node_name, config=config)
        self.store: Store | None = None
        self.vm_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.hub: EventHub | None = None
        self.streams: set = set()
        self.known_ips: dict[str, set[str]] = {}
        self.follow_tasks: set = set()
        from .tracker import Tracker

        self.tracker = Tracker(self)  # live states, from the VMMs' own events
        self.work: set[asyncio.Future] = set()  # blocking operations running in threads
        self.flags: set[progress.CancelFlag] = set()  # cancel flags of creates in flight
        self.closing = False
        self.routes = [
            Route("GET", "/node/ping", self.ping, "Is the daemon alive?", response="Pong"),
            Route("GET", "/node/info", self.info, "Host health, reservations and saturation.",
                  response="NodeInfo"),
            Route("GET", "/templates", self.templates, "The templates this node offers.",
                  response="TemplateList"),
            Route("GET", "/vms", self.list_vms, "The node's VMs, with live state and IPs.",
                  response="VmList", query={"state": "Only VMs in this state."}),
            Route("POST", "/vms", self.create_vms, "Create VMs from a template.",
                  body=lifecycle.CreateRequest, response="VmList", status=201),
            Route("GET", "/vms/{ref}", self.get_vm, "One VM, by id, name or uuid.",
                  response="Vm", query={"refresh": "Ask its hypervisor for its state (1/true)."}),
            Route("DELETE", "/vms/{ref}", self.delete_vm, "Remove a VM and everything it holds.",
                  response="Vm", query={"force": "Stop a running VM first (1/true)."}),
            Route("POST", "/vms/{ref}/start", self.start_vm, "Boot a VM.", response="Vm"),
            Route("POST", "/vms/{ref}/stop", self.stop_vm,
                  "Stop a VM: ACPI power button, then a kill after [host] stop_timeout.",
                  body=StopRequest, response="StopResult"),
            Route("GET", "/vms/{ref}/console", self.console, "The serial console: a WebSocket "
                  "carrying raw bytes both ways (binary messages).", response="ConsoleStream",
                  stream=True, status=101, content_type="application/octet-stream"),
            Route("GET", "/vms/{ref}/logs", self.logs, "What the serial console printed.",
                  response="ConsoleLog", stream=True, content_type="text/plain",
                  query={"follow": "Keep the stream open and send new output (1/true)."}),
            Route("GET", "/events", self.events, "Events as newline-delimited JSON, kept open.",
                  response="EventStream", stream=True),
            Route("GET", "/openapi.json", self.openapi, "This document.", response="OpenApi"),
        ]
        self.router = self.make_router()

    # --- application ---------------------------------------------------------------

    def make_router(self) -> Router:
        router = Router()
        for route in self.routes:
            router.add(route.method, API + route.path, route.handler)
        return router

    async def handle(self, request: Request) -> Response:
        """Route one request; every error becomes a reply in the JSON error shape."""
        try:
            response = await self.router.resolve(request)(request)
        except VirshleError as exc:
            if exc.http_status >= 500:
                logger.error("{} {}: {}", request.method, request.path, exc.message)
            return json_response(exc.to_json(), status=exc.http_status)
        except HTTPError as exc:
            if exc.status in (404, 405) and not exc.hint:
                exc.hint = f"See {API}/openapi.json for the routes."
            return exc.response()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.opt(exception=True).error("{} {} failed", request.method, request.path)
            return error_response(500, "internal", f"{type(exc).__name__}: {exc}",
                                  "This is a bug in Virshle or a plugin; the daemon log has the traceback.")
        logger.debug("{} {} -> {}", request.method, request.path_qs, response.status)
        return response

    async def _end_streams(self) -> None:
        """Shut-down: end the event, console and log streams (they never end by themselves)."""
        if self.hub:
            self.hub.close()
        for ws in list(self.streams):
            await ws.close(code=1001, message=b"node daemon shutting down")
        for task in list(self.follow_tasks):
            task.cancel()

    # --- helpers -------------------------------------------------------------------

    async def body(self, request: Request, cls: type) -> Any:
        if not request.can_read_body:
            raise UsageError("the request needs a JSON body", code="no_body")
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"the body is not valid JSON: {exc}", code="bad_json") from None
        except RecursionError:
            raise UsageError("the body is not valid JSON: it is nested too deeply",
                             code="bad_json") from None
        if not isinstance(data, dict):
            raise UsageError("the body must be a JSON object", code="bad_body")
        try:
            return structure(data, cls)
        except ConfigError as exc:
            raise UsageError(
                "bad request body: " + "; ".join(exc.problems),
                f"Fields accepted: {', '.join(f.name for f in attrs.fields(cls))}.",
                code="bad_body",
            ) from None

    async def run(self, func: Callable, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(func, *args, **kwargs)

    async def run_to_end(self, func: Callable, *args: Any, flag: progress.CancelFlag | None = None,
                         reporter: progress.Reporter | None = None) -> Any:
        """Run ``func`` in a thread; it always finishes before this returns or raises.

        When the handler is cancelled (its client went away, or the daemon
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
                        flag.cancel("the node daemon is shutting down" if self.closing
                                    else "the client went away")
        finally:
            if flag is not None:
                self.flags.discard(flag)
        if cancelled:
            raise asyncio.CancelledError
        return future.result()

    def _vm_json(self, vms: list, refresh: bool = False) -> list[dict]:
        """The VMs as JSON, with their leases; states come from the store (the tracker keeps
        them), asked from the VMM only when ``refresh`` says so."""
        if refresh:
            for vm in vms:
                if not self.vm_locks.get(vm.uuid) or not self.vm_locks[vm.uuid].locked():
                    lifecycle.refresh(self.node, self.store, vm)
        lifecycle.with_ips(self.node, vms)
        return [vm.to_json() for vm in vms]

    async def find(self, request: Request):
        """The VM the route's ``{ref}`` names (``id:7``, ``name:web``, ``uuid:…`` or bare)."""
        return await self.run(self.store.get, VmRef.parse(request.match_info["ref"]))

    async def locked_vm(self, request: Request):
        """The VM the route names and its lock (``async with lock`` before working on it)."""
        vm = await self.find(request)
        return vm, self.vm_locks[vm.uuid]

    async def reread(self, vm):
        """The VM's row again, now that its lock is held."""
        return await self.run(self.store.get, VmRef("uuid", vm.uuid))

    # --- routes ----------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        from .. import __version__

        return json_response({"pong": True, "node": self.node.name, "version": __version__})

    async def info(self, request: Request) -> Response:
        info = await self.run(nodeinfo.collect, self.node, self.store)
        return json_response(info)

    async def templates(self, request: Request) -> Response:
        return json_response([t.to_json() for t in self.config.templates])

    async def list_vms(self, request: Request) -> Response:
        state = request.query.get("state")
        unknown = set(request.query) - {"state"}
        if unknown:
            raise UsageError(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        from ..models import VM_STATES

        if state is not None and state not in VM_STATES:
            raise UsageError(f"unknown state {state!r}", f"States: {', '.join(VM_STATES)}.",
                             code="bad_state")
        vms, warnings = await self.run(self._with_notices, lambda: self._vm_json(self.store.all()))
        if state:
            vms = [vm for vm in vms if vm["state"] == state]
        return json_response(vms, headers=_warning_headers(warnings))

    @staticmethod
    def _with_notices(func: Callable) -> tuple[Any, list[str]]:
        from .. import notices

        collected = notices.collect()
        try:
            return func(), list(collected)
        finally:
            notices.stop_collecting()

    async def create_vms(self, request: Request) -> Response:
        create = await self.body(request, lifecycle.CreateRequest)
        flag = progress.CancelFlag()
        if "application/x-ndjson" not in request.headers.get("Accept", ""):
            vms = await self.run_to_end(lifecycle.create, self.node, self.store, create, flag=flag)
            return json_response([vm.to_json() for vm in vms], status=201)
        # A client that accepts NDJSON gets progress lines while it waits, then the result.
        response = StreamResponse(status=201, headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue = asyncio.Queue()

        def reporter(what: str, done: int, total: int) -> None:
            line = {"progress": {"what": what, "done": done, "total": total}}
            loop.call_soon_threadsafe(lines.put_nowait, line)

        task = asyncio.ensure_future(self.run_to_end(
            lifecycle.create, self.node, self.store, create, flag=flag,
            reporter=progress.Throttled(reporter)))
        try:
            while not task.done() or not lines.empty():
                getter = asyncio.ensure_future(lines.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    await response.write(json.dumps(getter.result()).encode() + b"\n")
                else:
                    getter.cancel()
        except (asyncio.CancelledError, ConnectionError):
            # the client went away: the create stops and undoes itself before we return
            flag.cancel("the node daemon is shutting down" if self.closing else "the client went away")
            await asyncio.wait({task})
            raise
        try:
            final = {"result": [vm.to_json() for vm in task.result()]}
        except VirshleError as exc:
            final = {"error": exc.to_json(), "status": exc.http_status}
        except Exception as exc:
            logger.opt(exception=True).error("POST /vms failed")
            final = {"error": {"error": "internal", "message": f"{type(exc).__name__}: {exc}",
                               "hint": ""}, "status": 500}
        await response.write(json.dumps(final).encode() + b"\n")
        await response.write_eof()
        return response

    async def get_vm(self, request: Request) -> Response:
        vm = await self.find(request)
        refresh = request.query.get("refresh", "").lower() in ("1", "true", "yes")
        documents, warnings = await self.run(self._with_notices,
                                             lambda: self._vm_json([vm], refresh=refresh))
        return json_response(documents[0], headers=_warning_headers(warnings))

    async def delete_vm(self, request: Request) -> Response:
        force = request.query.get("force", "").lower() in ("1", "true", "yes")
        vm, lock = await self.locked_vm(request)
        async with lock:
            vm = await self.reread(vm)
            state = vm.state
            if force and state in ("running", "paused") and self.tracker.following(vm.uuid):
                await self.run(self.store.mark, vm, "deleting")
                try:  # killed through its watch, on the loop; the delete then finds it stopped
                    await self.tracker.stop(vm, True, 0)
                except BaseException:
                    await self.run(self.store.mark, vm, None)
                    raise
                vm = await self.run_to_end(lifecycle.finish_stop, self.node, self.store, vm, state,
                                           True)
            await self.run_to_end(lifecycle.delete, self.node, self.store, vm, force)
        self.vm_locks.pop(vm.uuid, None)
        return json_response(vm.to_json())

    async def start_vm(self, request: Request) -> Response:
        vm, lock = await self.locked_vm(request)
        async with lock:
            vm = await self.reread(vm)
            vm = await self.run_to_end(lifecycle.start, self.node, self.store, vm)
            await self.tracker.follow(vm)
        return json_response(vm.to_json())

    async def stop_vm(self, request: Request) -> Response:
        body = await self.body(request, StopRequest) if request.can_read_body else StopRequest()
        vm, lock = await self.locked_vm(request)
        async with lock:
            vm = await self.reread(vm)
            state = vm.state
            if state in ("running", "paused") and self.tracker.following(vm.uuid):
                # a signal (or the power button) and a wait on the exit its watch sees: no thread
                await self.run(self.store.mark, vm, "stopping")
                try:
                    await self.tracker.stop(vm, body.force, float(self.config.host.stop_timeout))
                except BaseException:
                    await self.run(self.store.mark, vm, None)
                    raise
                vm = await self.run_to_end(lifecycle.finish_stop, self.node, self.store, vm, state,
                                           body.force)
                was_running = True
            else:
                vm, was_running = await self.run_to_end(lifecycle.stop, self.node, self.store, vm,
                                                        body.force)
        return json_response({"vm": vm.to_json(), "was_running": was_running})

    async def console(self, request: Request) -> Response:
        vm = await self.find(request)
        state = await self.run(lifecycle.live_state, self.node, vm)
        if state not in ("running", "paused"):
            raise Conflict(f"VM {vm.name!r} is {state}; its console is not live",
                           f"Start it with `virshle vm start --name {vm.name}`, or read "
                           f"`virshle vm logs --name {vm.name}`.", code="vm_not_running")
        endpoint = await self.run(lifecycle.console, self.node, vm)
        if not endpoint.socket:
            raise NotFound(f"VM {vm.name!r} has no interactive console", code="no_console")
        try:
            reader, writer = await asyncio.open_unix_connection(endpoint.socket)
        except OSError as exc:
            raise VirshleError(f"VM {vm.name!r}: cannot reach its console: {exc}",
                               code="console_unreachable") from None
        ws = WebSocketResponse()
        await ws.prepare(request)
        self.streams.add(ws)
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
            self.streams.discard(ws)
            logger.info("console of VM {} detached", vm.name)
        return ws

    async def logs(self, request: Request) -> Response:
        vm = await self.find(request)
        follow = request.query.get("follow", "").lower() in ("1", "true", "yes")
        endpoint = await self.run(lifecycle.console, self.node, vm)
        path = Path(endpoint.log) if endpoint.log else None
        response = StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        if path is None:
            await response.write_eof()
            return response
        rotated = path.with_name(path.name + ".1")
        if rotated.exists():
            await response.write(await self.run(rotated.read_bytes))
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

    async def supervise(self) -> None:
        """Notice VMM exits, state changes and new leases; keep console logs under their cap."""
        rounds = 0
        zombies: set[int] = set()
        while True:
            await asyncio.sleep(SUPERVISE_EVERY)
            rounds += 1
            try:
                zombies = _reap_orphans(zombies)
                vms = await self.run(self.store.all)
                for vm in vms:
                    lock = self.vm_locks.get(vm.uuid)
                    if lock is not None and lock.locked():
                        continue  # an operation on it is under way
                    if vm.state in ("running", "paused") and not self.tracker.following(vm.uuid):
                        # no watch follows it (a plugin without one): ask its VMM
                        await self.run(lifecycle.refresh, self.node, self.store, vm)
                        if vm.state in ("running", "paused"):
                            await self.tracker.follow(vm)
                    await self.run(_rotate_console_log, self.node, vm)
                if rounds % LEASE_EVERY == 0:
                    await self.run(self._watch_leases, [vm for vm in vms if vm.state == "running"])
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
        lifecycle.with_ips(self.node, running)
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
        vms = await self.run(self.store.all)
        running = 0
        for vm in vms:
            vm = await self.run(lifecycle.refresh, self.node, self.store, vm)
            if vm.state in ("running", "paused"):
                running += 1
                await self.tracker.follow(vm)
        if vms:
            logger.info("re-adopted {} running VM(s) of {}", running, len(vms))

    async def events(self, request: Request) -> Response:
        assert self.hub is not None
        response = StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        queue: asyncio.Queue = asyncio.Queue()
        self.hub.queues.add(queue)
        try:
            await response.write(json.dumps({"event": "hello", "node": self.node.name}).encode() + b"\n")
            while True:
                line = await queue.get()
                if line is None:
                    break
                await response.write(line.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.queues.discard(queue)
        return response

    async def openapi(self, request: Request) -> Response:
        from .. import __version__

        return json_response(openapi_document(self.routes, API, __version__))

    # --- serving -----------------------------------------------------------------------

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        socket_path = self.config.host.socket_path
        root = self.config.host.root_path
        if not root.is_dir():
            raise VirshleError(f"{root} does not exist",
                               "Run `virshle node init --all` first.", code="not_initialized")
        os.umask(0o027)  # everything the daemon and its VMMs make: nothing for other users
        from concurrent.futures import ThreadPoolExecutor

        # blocking pieces (the store, NIC plugins) of many concurrent operations: waits on VMMs
        # happen on the loop, so these threads are short-lived work, not one per stop
        loop.set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="virshle"))
        lock = _take_lock(root)
        try:
            await self._start_up(root, socket_path)
            server = Server(self.handle, header_timeout=HEADER_TIMEOUT, max_body=MAX_BODY)
            bound = await _bind(server, socket_path)
        except BaseException:
            if self.store is not None:
                self.store.close()
            os.close(lock)
            raise
        supervisor = asyncio.create_task(self.supervise())
        logger.info("node {!r} serving on {} ({} VMs)", self.node.name, socket_path,
                    len(self.store.all()))

        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            deadline = loop.time() + SHUTDOWN_TIMEOUT
            logger.info("shutting down: undoing creates in flight, finishing other requests")
            self.closing = True
            for flag in list(self.flags):
                flag.cancel("the node daemon is shutting down")
            supervisor.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self._end_streams()
            await server.close(timeout=SHUTDOWN_TIMEOUT * 2 / 3)
            await self.tracker.close()  # the VMMs keep running; the next daemon follows them
            unfinished = [f for f in self.work if not f.done()]
            if unfinished:
                await asyncio.wait(unfinished, timeout=max(0.1, deadline - loop.time()))
            _remove_socket(socket_path, bound)
            unfinished = [f for f in self.work if not f.done()]
            if unfinished:
                # never close the store under a running operation: its journal entry stays,
                # and the next daemon finishes or undoes it
                logger.error("{} operation(s) did not finish within {}s; exiting without them "
                             "(the next start reconciles them)", len(unfinished), SHUTDOWN_TIMEOUT)
                os._exit(1)
            self.store.close()
            os.close(lock)
            logger.info("node {!r} stopped", self.node.name)

    async def _start_up(self, root: Path, socket_path: Path) -> None:
        from .init import secure

        changed = await self.run(secure, root)
        if changed:
            logger.info("file modes applied under {}: {}", root, "; ".join(changed[:20])
                        + (f" (and {len(changed) - 20} more)" if len(changed) > 20 else ""))
        from ..store import open_node_store

        self.store = await self.run(open_node_store, self.config.host.db_path, root / "vm",
                                    self.node.name)
        _become_subreaper()
        nodeinfo.prime_cpu()
        self.hub = EventHub(asyncio.get_running_loop())
        _check_socket_path(socket_path)
        for line in await self.run(lifecycle.reconcile, self.node, self.store):
            logger.warning("reconcile: {}", line)
        await self.readopt()


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


def _become_subreaper() -> None:
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


def _reap_orphans(seen: set[int]) -> set[int]:
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


def _rotate_console_log(node: NodeContext, vm) -> None:
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


def _warning_headers(warnings: list[str]) -> dict[str, str]:
    return {"X-Virshle-Warnings": json.dumps(warnings)} if warnings else {}


def error_response(status: int, code: str, message: str, hint: str = "") -> Response:
    return json_response({"error": code, "message": message, "hint": hint}, status=status)


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
