"""The routes of the verbs on a VM that exists: pause, resume, reboot, disk resize,
snapshots and clone (``verbs.py`` does the work). Each resolves its VM, locks it, and
runs the verb on the node, as ``routes.py``'s do."""

from __future__ import annotations

from typing import Any

from ..wire import api
from .http import Request, Response, json_response
from .openapi import Route


class VerbRoutes:
    def __init__(self, owner: Any):
        """``owner`` is the node's ``routes.Api``: its node, request bodies, and replies
        with progress."""
        self.owner = owner
        self.node = owner.node

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/vms/{ref}/pause", self.pause, "Pause a running VM: its vcpus stop, "
                  "its memory stays (a paused VM is done already).", response=api.Vm),
            Route("POST", "/vms/{ref}/resume", self.resume, "Resume a paused VM (a running VM "
                  "is done already).", response=api.Vm),
            Route("POST", "/vms/{ref}/reboot", self.reboot, "Reboot a running VM: the ACPI power "
                  "button and a reset once the guest is down, or with force a reset at once.",
                  body=api.RebootRequest, response=api.Vm),
            Route("POST", "/vms/{ref}/disks/{disk}/resize", self.disk_resize,
                  "Grow a stopped VM's disk (qemu-img resize), within [host.limits] disk.",
                  body=api.DiskResize, response=api.Vm),
            Route("GET", "/vms/{ref}/snapshots", self.snapshots, "The VM's snapshots, oldest "
                  "first.", response="list[Snapshot]"),
            Route("POST", "/vms/{ref}/snapshots", self.snapshot_create, "Take a snapshot: the "
                  "writable disks (qcow2 internal snapshots), and with memory a running guest's "
                  "memory and devices; it reserves its size against [host.limits] disk.",
                  body=api.SnapshotRequest, response=api.Snapshot, status=201),
            Route("POST", "/vms/{ref}/snapshots/{snapshot}/restore", self.snapshot_restore,
                  "Bring the disks back to a snapshot (a stopped VM), or a running guest to a "
                  "snapshot with memory.", response=api.Vm),
            Route("DELETE", "/vms/{ref}/snapshots/{snapshot}", self.snapshot_delete,
                  "Remove a snapshot, and what it reserved.", response=api.Snapshot),
            Route("POST", "/vms/{ref}/clone", self.clone, "A new VM with a copy of a stopped "
                  "VM's disks, a fresh name, uuid, MACs and cloud-init instance-id (with Accept: "
                  "application/x-ndjson, progress lines and then the result).",
                  body=api.CloneRequest, response=api.Vm, status=201, stream_line=api.CloneLine,
                  content_type="application/x-ndjson"),
        ]

    async def _control(self, request: Request, action: str, force: bool = False) -> Response:
        async with self.node.locked(request.match_info["ref"]) as vm:
            vm = await self.node.control(vm, action, force)
        return json_response(api.dump(api.Vm, vm))

    async def pause(self, request: Request) -> Response:
        return await self._control(request, "pause")

    async def resume(self, request: Request) -> Response:
        return await self._control(request, "resume")

    async def reboot(self, request: Request) -> Response:
        body = (await self.owner.body(request, api.RebootRequest) if request.can_read_body
                else api.RebootRequest())
        return await self._control(request, "reboot", body.force)

    async def disk_resize(self, request: Request) -> Response:
        body = await self.owner.body(request, api.DiskResize)
        async with self.node.locked(request.match_info["ref"]) as vm:
            vm = await self.node.disk_resize(vm, request.match_info["disk"], body.size, body.grow)
        return json_response(api.dump(api.Vm, vm))

    async def snapshots(self, request: Request) -> Response:
        vm = await self.node.find(request.match_info["ref"])
        listed = await self.node.run(self.node.store.snapshots, vm)
        return json_response([snapshot.to_json() for snapshot in listed])

    async def snapshot_create(self, request: Request) -> Response:
        body = await self.owner.body(request, api.SnapshotRequest)
        async with self.node.locked(request.match_info["ref"]) as vm:
            snapshot = await self.node.snapshot(vm, "create", body.name, body.memory)
        return json_response(snapshot.to_json(), status=201)

    async def snapshot_restore(self, request: Request) -> Response:
        async with self.node.locked(request.match_info["ref"]) as vm:
            vm = await self.node.snapshot(vm, "restore", request.match_info["snapshot"])
        return json_response(api.dump(api.Vm, vm))

    async def snapshot_delete(self, request: Request) -> Response:
        async with self.node.locked(request.match_info["ref"]) as vm:
            snapshot = await self.node.snapshot(vm, "delete", request.match_info["snapshot"])
        return json_response(snapshot.to_json())

    async def clone(self, request: Request) -> Response:
        body = await self.owner.body(request, api.CloneRequest)
        async with self.node.locked(request.match_info["ref"]) as vm:
            return await self.owner.reply_with_progress(
                request, lambda flag, reporter: self.node.clone(vm, body, flag, reporter),
                api.CloneLine, lambda made: api.dump(api.Vm, made))
