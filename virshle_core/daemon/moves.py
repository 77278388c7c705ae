"""The routes of a VM moving between nodes (``vm/migration.py`` does the work): the
source's under the VM (``/vms/{ref}/migrate/{id}/...``), the target's under ``/moves``.
The command line drives them in turn and carries their streams (``tunnel.py``) from one
node to the other. The source acts for the VM's owner; the target takes VMs for its
admins only."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

from .. import progress
from ..errors import Conflict, NotFound, VirshleError
from ..host import transfer
from ..log import logger
from ..vm import migration, movefiles
from ..wire import api
from . import access
from .http import Request, Response, json_response
from .openapi import Route
from .tunnel import CHUNK, Tunnel, splice

ACCEPT_TIMEOUT = 60.0
"""Seconds the source waits for its hypervisor to open a stream's socket."""


class Incoming:
    """What the target keeps of a move while it lasts: the offer, the hypervisor's sockets."""

    def __init__(self, offer: api.MoveOffer):
        self.offer = offer
        self.sockets: dict[str, str] = {}
        self.received = False  # a files stream ended well
        self.failure = ""  # why the last files stream did not


class MoveRoutes:
    def __init__(self, owner: Any):
        self.owner = owner
        self.node = owner.node
        self.incoming: dict[str, Incoming] = {}
        self.sent: set[str] = set()  # moves whose files the target said it holds

    def routes(self) -> list[Route]:
        stream = dict(response="Tunnel", stream=True, status=101,
                      content_type="application/octet-stream")
        return [
            Route("GET", "/vms/{ref}/migrate/{id}/stream/{channel}", self.source_stream,
                  "The source's end of one stream of a move (a byte stream: Upgrade: "
                  "virshle-tunnel).", query={"what": "files: all, static or console",
                                             "bases": "files: base images to send (sha256, comma-separated)",
                                             "since": "console: the offset to send from"}, **stream),
            Route("POST", "/vms/{ref}/migrate/{id}/perform", self.perform,
                  "The source did its part: the files arrived, or (running) the disks and "
                  "memory; NDJSON progress with Accept: application/x-ndjson.",
                  body=api.PerformRequest, response=api.MoveFigures,
                  stream_line=api.PerformLine, content_type="application/x-ndjson"),
            Route("POST", "/vms/{ref}/migrate/{id}/confirm", self.confirm,
                  "The target owns the VM: the source lets it go.", response=api.Vm),
            Route("POST", "/vms/{ref}/migrate/{id}/abort", self.abort,
                  "The move is off: the VM stays on the source as it was.", response=api.Vm),
            Route("GET", "/moves", self.list_moves, "The moves this node journals, both sides.",
                  response="list[Move]"),
            Route("POST", "/moves", self.accept, "Take an offered VM (admins): checked, admitted, "
                  "journaled, not listed until it finishes.", body=api.MoveOffer,
                  response=api.MovePlan, status=201),
            Route("GET", "/moves/{id}/stream/{channel}", self.target_stream,
                  "The target's end of one stream of a move.", **stream),
            Route("POST", "/moves/{id}/start", self.start,
                  "A running VM's target: disks, NICs, the VMM waiting for the guest.",
                  response=api.MoveStarted),
            Route("POST", "/moves/{id}/finish", self.finish,
                  "The VM is this node's: listed, and a running guest resumed.", response=api.Vm),
            Route("DELETE", "/moves/{id}", self.rollback,
                  "An incoming VM that will not be this node's goes.", response=api.Move),
        ]

    # --- the source ----------------------------------------------------------------

    async def _moving(self, request: Request):
        """The VM of the route, when the move of the route is the one under way on it."""
        vm = await self.node.find(request.match_info["ref"])
        if vm.move_id != request.match_info["id"]:
            raise NotFound(f"VM {vm.name!r} has no move {request.match_info['id']!r}",
                           "Start its move with `virshle vm migrate`.", code="no_move")
        return vm

    async def source_stream(self, request: Request) -> Response:
        vm = await self._moving(request)
        channel = request.match_info["channel"]
        tunnel = Tunnel()
        if channel == "files":
            what = request.query.get("what", "all")
            bases = [b for b in request.query.get("bases", "").split(",") if b]
            files = await self.node.run(movefiles.source_files, vm, what, bases,
                                        int(request.query.get("since", 0) or 0))
            await tunnel.prepare(request)
            try:
                await transfer.send_files(tunnel.reader, tunnel.writer, files)
            except (transfer.TransferError, ConnectionError) as exc:
                logger.warning("VM {}: sending its files failed: {}", vm.name, exc)
            else:
                if what != "console":
                    self.sent.add(vm.move_id)
            finally:
                tunnel.end()
            return tunnel
        path = source_socket(vm, channel)
        os.unlink(path) if os.path.exists(path) else None
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        async def on_connect(reader, writer) -> None:
            if accepted.done():
                writer.close()
                return
            accepted.set_result((reader, writer))
            await asyncio.shield(done)

        done: asyncio.Future = asyncio.get_running_loop().create_future()
        server = await asyncio.start_unix_server(on_connect, path=path)
        await tunnel.prepare(request)
        try:
            if await _wait_for_hypervisor(tunnel, accepted):
                reader, writer = accepted.result()
                server.close()
                await splice(tunnel, reader, writer)
            else:
                logger.info("VM {}: stream {} ended before its hypervisor opened it",
                            vm.name, channel)
        except asyncio.TimeoutError:
            logger.warning("VM {}: its hypervisor never opened stream {}", vm.name, channel)
        finally:
            server.close()
            done.set_result(None) if not done.done() else None
            tunnel.end()
            os.unlink(path) if os.path.exists(path) else None
        return tunnel

    async def perform(self, request: Request) -> Response:
        body = await self.owner.body(request, api.PerformRequest) if request.can_read_body \
            else api.PerformRequest()
        async with self.node.locked(request.match_info["ref"], moving=True) as vm:
            if vm.move_id != request.match_info["id"]:
                raise NotFound(f"VM {vm.name!r} has no move {request.match_info['id']!r}",
                               code="no_move")
            move = self.node.store.move(vm.move_id)
            if not move.live and vm.move_id not in self.sent:
                raise Conflict(f"VM {vm.name!r}: its files have not all reached the target",
                               "Run `virshle vm migrate` again.", code="migration_failed")
            sockets = {channel: source_socket(vm, channel) for channel in body.channels}

            def work(flag, reporter):
                return self.node.run_to_end(_perform, self.node.context, vm, move.live, sockets,
                                            flag=flag, reporter=reporter)
            return await self.owner.reply_with_progress(
                request, work, api.PerformLine, lambda figures: figures.to_json())

    async def confirm(self, request: Request) -> Response:
        async with self.node.locked(request.match_info["ref"], moving=True) as vm:
            await self.owner.tracker.let_go(vm)
            vm = await self.node.run_to_end(migration.confirm, self.node.context, vm,
                                            request.match_info["id"])
            self.node.forget(vm.uuid)
            self.sent.discard(request.match_info["id"])
        return json_response(api.dump(api.Vm, vm))

    async def abort(self, request: Request) -> Response:
        async with self.node.locked(request.match_info["ref"], moving=True) as vm:
            vm = await self.node.run_to_end(migration.abort_source, self.node.context, vm,
                                            request.match_info["id"])
            self.sent.discard(request.match_info["id"])
            vm = await self.node.refresh(vm)
        return json_response(api.dump(api.Vm, vm))

    # --- the target ----------------------------------------------------------------

    async def list_moves(self, request: Request) -> Response:
        moves = await self.node.run(self.node.store.moves)
        return json_response(api.dump_list(api.Move, moves))

    async def accept(self, request: Request) -> Response:
        access.check_admin("taking a VM from another node", self.node.config.host.admin_group)
        offer = await self.owner.body(request, api.MoveOffer)
        vm, plan = await self.node.run_to_end(migration.accept, self.node.context, offer)
        self.incoming[offer.id] = Incoming(offer)
        logger.info("VM {} arriving from node {} (move {})", vm.name, offer.source_name, offer.id)
        return json_response(plan.to_json(), status=201)

    async def _incoming(self, request: Request):
        access.check_admin("taking a VM from another node", self.node.config.host.admin_group)
        move_id = request.match_info["id"]
        held = self.incoming.get(move_id)
        move = await self.node.run(self.node.store.move, move_id)
        if held is None or move is None:
            raise NotFound(f"node {self.node.name!r} has no incoming move {move_id!r}",
                           "It was rolled back (its daemon restarted?): run `virshle vm migrate` "
                           "again.", code="no_move")
        vm = await self.node.run(_incoming_vm, self.node.store, move.vm_uuid)
        return held, vm

    async def target_stream(self, request: Request) -> Response:
        held, vm = await self._incoming(request)
        channel = request.match_info["channel"]
        tunnel = Tunnel()
        if channel == "files":
            await tunnel.prepare(request)
            try:
                await transfer.receive_files(
                    tunnel.reader, tunnel.writer,
                    lambda header: movefiles.place_file(self.node.context, vm, header),
                    lambda header, path: movefiles.file_received(self.node.context, header, path))
            except (transfer.TransferError, OSError) as exc:
                logger.warning("VM {}: receiving its files failed: {}", vm.name, exc)
                held.received, held.failure = False, str(exc)
            else:
                held.received, held.failure = True, ""
            finally:
                tunnel.end()
            return tunnel
        path = held.sockets.get(channel)
        if path is None:
            raise NotFound(f"move {held.offer.id} has no stream {channel!r}", code="no_move")
        reader, writer = await asyncio.open_unix_connection(path)
        await tunnel.prepare(request)
        await splice(tunnel, reader, writer)
        return tunnel

    async def start(self, request: Request) -> Response:
        held, vm = await self._incoming(request)
        self._check_received(held, vm)
        async with self.node.locks[vm.uuid]:
            held.sockets = await self.node.run_to_end(migration.start_receiving, self.node.context,
                                                      vm, held.offer)
        log = vm.path / movefiles.CONSOLE
        size = log.stat().st_size if log.exists() else 0
        return json_response(api.MoveStarted(channels=sorted(held.sockets),
                                             console_size=size).to_json())

    async def finish(self, request: Request) -> Response:
        held, vm = await self._incoming(request)
        self._check_received(held, vm)
        async with self.node.locks[vm.uuid]:
            vm = await self.node.run_to_end(migration.finish, self.node.context, vm, held.offer)
            if held.offer.live:
                await self.owner.tracker.follow(vm)
        self.incoming.pop(held.offer.id, None)
        logger.info("VM {} is now this node's (from node {})", vm.name, held.offer.source_name)
        return json_response(api.dump(api.Vm, vm))

    def _check_received(self, held: Incoming, vm) -> None:
        if not held.received:
            raise VirshleError(f"VM {vm.name!r}: its files did not all reach node "
                               f"{self.node.name!r}" + (f": {held.failure}" if held.failure else ""),
                               "Run `virshle vm migrate` again.", code="migration_failed")

    async def rollback(self, request: Request) -> Response:
        access.check_admin("taking a VM from another node", self.node.config.host.admin_group)
        move_id = request.match_info["id"]
        move = await self.node.run(self.node.store.move, move_id)
        if move is None or move.side != "target":
            raise NotFound(f"node {self.node.name!r} has no incoming move {move_id!r}", code="no_move")
        vm = await self.node.run(_incoming_vm, self.node.store, move.vm_uuid)
        async with self.node.locks[vm.uuid]:
            await self.node.run_to_end(migration.rollback, self.node.context, vm)
        self.incoming.pop(move_id, None)
        return json_response(move.to_json())


async def _wait_for_hypervisor(tunnel: Tunnel, accepted: asyncio.Future) -> bool:
    """Wait until the hypervisor opens the stream's socket (True), or the command line
    closes the tunnel first (False: the move is off). What the other node sends before
    (an NBD server's greeting) is kept for the hypervisor."""
    deadline = asyncio.get_running_loop().time() + ACCEPT_TIMEOUT
    while True:
        reading = asyncio.ensure_future(tunnel.reader.read(CHUNK))
        await asyncio.wait({accepted, reading}, return_when=asyncio.FIRST_COMPLETED,
                           timeout=deadline - asyncio.get_running_loop().time())
        if not reading.done():
            reading.cancel()
            if accepted.done():
                return True
            raise asyncio.TimeoutError
        data = reading.result()
        if not data:
            return False
        tunnel.reader.unread(data)
        if accepted.done():
            return True
        await asyncio.wait({accepted}, timeout=deadline - asyncio.get_running_loop().time())
        if accepted.done():
            return True
        raise asyncio.TimeoutError


def source_socket(vm, channel: str) -> str:
    """The unix socket, in the VM's directory, where the source's hypervisor opens a stream."""
    return str(vm.path / f"m-{hashlib.sha1(channel.encode()).hexdigest()[:8]}.sock")


def _perform(node, vm, live: bool, sockets: dict[str, str]) -> api.MoveFigures:
    from ..hooks import plugins

    figures = api.MoveFigures()
    try:
        if live:
            sent = plugins().migration_send(vm=vm, sockets=sockets, node=node)
            if sent is None:
                raise VirshleError(f"VM {vm.name!r}: no plugin could send it", code="no_hypervisor")
            figures = api.MoveFigures(bytes=sent.get("bytes") or 0, total_ms=sent.get("total_ms"),
                                      downtime_ms=sent.get("downtime_ms"))
        progress.check_cancelled()
    except BaseException:
        migration.abort_source(node, vm)  # the target cannot finish without this: it stays here
        raise
    migration.performed(node, vm)
    return figures


def _incoming_vm(store, uuid: str):
    vm = next((vm for vm in store.journal() if vm.uuid == uuid), None)
    if vm is None:
        raise NotFound(f"no incoming VM with uuid {uuid}", code="no_move")
    return vm
