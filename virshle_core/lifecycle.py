"""Create and delete VMs: the hooks in order, all or nothing.

Each step that makes something pushes its undo onto a stack; if a later
step fails, the stack unwinds in reverse and the error names the step.
"""

from __future__ import annotations

import os
import shutil
import uuid as uuid_lib
from pathlib import Path
from typing import Any, Callable

import attrs

from . import events
from .config import NAME_PATTERN, VmTemplate
from .errors import Conflict, NotFound, UsageError, VirshleError
from .log import logger
from .models import Disk, Net, NodeContext, Vm
from .names import random_name
from .plugins import hook
from .store import Store


@attrs.define
class CreateRequest:
    """The body of ``POST /api/v1/vms``."""

    template: str
    name: str | None = None
    count: int = 1
    user_data: str | None = None


class Undo:
    """A stack of undo actions, run in reverse when a step fails."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], Any]]] = []

    def push(self, what: str, action: Callable[[], Any]) -> None:
        self._actions.append((what, action))

    def run(self) -> None:
        while self._actions:
            what, action = self._actions.pop()
            try:
                action()
            except Exception as exc:  # keep undoing the rest
                logger.error("rollback: could not undo {}: {}", what, exc)


def validate_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"{name!r} is not a valid VM name",
            "Use 1 to 63 lowercase letters, digits and '-', starting with a letter or digit.",
            code="bad_name",
        )
    return name


def create(node: NodeContext, store: Store, request: CreateRequest) -> list[Vm]:
    """Create ``request.count`` VMs from a template; all of them, or none."""
    template = node.config.template(request.template)
    if template is None:
        known = ", ".join(t.name for t in node.config.templates) or "none"
        raise NotFound(
            f"no template {request.template!r} on node {node.name!r} (templates: {known})",
            "Add it as [[template.vm]] in config.toml, or list them with `virshle template ls`.",
            code="template_not_found",
        )
    if request.count < 1:
        raise UsageError("count must be at least 1", code="bad_count")
    if request.name is not None:
        validate_name(request.name)
        if request.count > 1:
            validate_name(f"{request.name}-{request.count}")
    for disk in template.disk:
        path = disk.expanded_path
        if not path.is_file():
            raise UsageError(
                f"template {template.name!r}: disk {disk.name!r} is missing: {path} is not a file",
                "Fix the path in config.toml ([[template.vm.disk]]).",
                code="template_disk_missing",
            )
    created: list[Vm] = []
    try:
        for index in range(request.count):
            name = request.name
            if name is not None and request.count > 1:
                name = f"{name}-{index + 1}"
            created.append(_create_one(node, store, template, name, request.user_data))
    except BaseException:
        for vm in reversed(created):
            _remove_quietly(node, store, vm)
        raise
    for vm in created:
        events.emit(events.VM_CREATED, node.name, vm=vm.to_json())
    return created


def _create_one(node: NodeContext, store: Store, template: VmTemplate, name: str | None,
                user_data: str | None) -> Vm:
    undo = Undo()
    vm_uuid = str(uuid_lib.uuid4())
    vm_dir = node.root / "vm" / vm_uuid
    vm = Vm(
        id=None, uuid=vm_uuid, name=name or "", node=node.name, template=template.name,
        vcpu=template.vcpu, vram=template.vram,
        nets=[Net(name=n.name, type=n.kind, options=dict(n.options)) for n in template.net],
        kernel=_expand(template.kernel), initramfs=_expand(template.initramfs),
        cmdline=template.cmdline, firmware=_expand(template.firmware),
        user_data=user_data, dir=str(vm_dir),
    )
    step = "validate"
    try:
        step = "pre-create checks"
        hook().virshle_pre_create(vm=vm, template=template, node=node)

        step = "VM directory"
        (vm_dir / "disk").mkdir(parents=True)
        undo.push(f"directory {vm_dir}", lambda: shutil.rmtree(vm_dir, ignore_errors=True))

        for disk in template.disk:
            step = f"disk {disk.name!r}"
            dest = vm_dir / "disk" / disk.name
            result = hook().virshle_disk_clone(
                source=str(disk.expanded_path), dest=str(dest), disk=disk
            )
            if not result:
                raise VirshleError(f"no plugin could clone disk {disk.name!r}")
            vm.disks.append(Disk(
                name=disk.name, path=str(dest), size=result.get("size"),
                readonly=disk.readonly, source=str(disk.expanded_path),
                format=result.get("format", "raw"),
            ))

        if user_data is not None:
            step = "user-data"
            (vm_dir / "user-data").write_text(user_data)

        step = "database row"
        _insert_with_free_name(store, vm, explicit=name is not None)
        undo.push(f"row of VM {vm.name}", lambda: store.delete(vm))
        return vm
    except BaseException as exc:
        undo.run()
        if isinstance(exc, VirshleError):
            if not exc.message.startswith("creating"):
                exc.message = f"creating a VM from template {template.name!r} failed at {step}: {exc.message}"
                exc.args = (exc.message,)
            raise
        if isinstance(exc, Exception):
            raise VirshleError(
                f"creating a VM from template {template.name!r} failed at {step}: {exc}",
                "Nothing was left behind; run with -vv for details.",
            ) from exc
        raise


def _insert_with_free_name(store: Store, vm: Vm, explicit: bool) -> None:
    if explicit:
        store.insert(vm)
        return
    for _attempt in range(20):  # the unique index decides; another create may win a name
        vm.name = random_name(store.names())
        try:
            store.insert(vm)
            return
        except Conflict as exc:
            if exc.code != "name_taken":
                raise
    raise VirshleError("could not find a free VM name after 20 tries")


def _expand(path: str | None) -> str | None:
    return str(Path(path).expanduser()) if path else None


def delete(node: NodeContext, store: Store, vm: Vm, force: bool = False) -> Vm:
    """Remove a VM: stop it (with ``force``), release its resources, drop its row."""
    state = live_state(node, vm)
    if state in ("running", "paused"):
        if not force:
            raise Conflict(
                f"VM {vm.name!r} is {state}",
                f"Stop it first with `virshle vm stop --name {vm.name}`, or use `vm rm --force`.",
                code="vm_running",
            )
        hook().virshle_stop(vm=vm, force=True, node=node)
    if state not in ("created", "shutdown"):  # its NICs may still exist (running, crashed)
        _detach_all(node, vm)
    hook().virshle_post_delete(vm=vm, node=node)
    shutil.rmtree(vm.path, ignore_errors=True)
    store.delete(vm)
    events.emit(events.VM_DELETED, node.name, vm=vm.to_json())
    return vm


def _remove_quietly(node: NodeContext, store: Store, vm: Vm) -> None:
    try:
        shutil.rmtree(vm.path, ignore_errors=True)
        store.delete(vm)
    except Exception as exc:
        logger.error("rollback: could not remove VM {}: {}", vm.name, exc)


def live_state(node: NodeContext, vm: Vm) -> str:
    """The VM's state from its VMM, falling back to the last state recorded."""
    try:
        state = hook().virshle_vm_state(vm=vm, node=node)
    except Exception as exc:
        logger.warning("reading the state of VM {} failed: {}", vm.name, exc)
        state = None
    return state or vm.state


def with_ips(node: NodeContext, vms: list[Vm]) -> list[Vm]:
    """Fill each VM's ``ips`` from one batched ``virshle_lease_query``."""
    if not vms or not any(vm.nets for vm in vms):
        return vms
    try:
        answers = hook().virshle_lease_query(vms=vms, node=node)
    except Exception as exc:
        logger.warning("lease query failed: {}", exc)
        return vms
    by_mac: dict[str, list[str]] = {}
    for leases in answers:
        for lease in leases or []:
            by_mac.setdefault(lease.mac.lower(), []).append(lease.ip)
    for vm in vms:
        vm.ips = [ip for net in vm.nets if net.mac for ip in by_mac.get(net.mac.lower(), [])]
    return vms


def _owners_of(hook_name: str) -> list[str]:
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook_name)
    return sorted({pm.get_name(impl.plugin) or "?" for impl in caller.get_hookimpls()} - {"core"})


def start(node: NodeContext, store: Store, vm: Vm) -> Vm:
    """Attach every NIC, then boot the VMM; undo the attachments if the boot fails."""
    state = live_state(node, vm)
    if state in ("running", "paused"):
        raise Conflict(f"VM {vm.name!r} is already {state}",
                       f"Stop it with `virshle vm stop --name {vm.name}`.", code="vm_running")
    undo = Undo()
    attachments = []
    try:
        for net in vm.nets:
            attachment = hook().virshle_net_attach(vm=vm, net=net, node=node)
            if attachment is None:
                raise UsageError(
                    f"VM {vm.name!r}: no plugin handles net type {net.type!r} (net {net.name!r})",
                    "Plugins that attach nets: " + (", ".join(_owners_of("virshle_net_attach")) or "none")
                    + ". Install one, or fix [template.vm.net.type.*].",
                    code="unknown_net_type",
                )
            attachments.append(attachment)
            undo.push(f"net {net.name}", lambda net=net, a=attachment: hook().virshle_net_detach(
                vm=vm, net=net, attachment=a, node=node))
            events.emit(events.NET_ATTACHED, node.name, vm=vm.to_json(), net=net.name,
                        ifname=attachment.ifname)
        handle = hook().virshle_start(vm=vm, attachments=attachments, node=node)
        if handle is None:
            raise VirshleError(
                f"VM {vm.name!r}: no hypervisor plugin could start it "
                f"(hypervisor {vm.hypervisor or node.config.host.hypervisor!r})",
                "Hypervisor plugins: " + (", ".join(_owners_of("virshle_start")) or "none")
                + ". Check [host] hypervisor.",
                code="no_hypervisor",
            )
    except BaseException:
        undo.run()
        raise
    finally:
        # the VMM inherited its own copies of NIC descriptors (macvtap); ours go
        for attachment in attachments:
            for fd in attachment.fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
    store.update(vm, state="running", hypervisor=handle.hypervisor)
    events.emit(events.VM_STARTED, node.name, vm=vm.to_json(), pid=handle.pid)
    return vm


def stop(node: NodeContext, store: Store, vm: Vm, force: bool = False) -> tuple[Vm, bool]:
    """Stop the VM and detach its NICs; returns (vm, whether it was running)."""
    state = live_state(node, vm)
    was_running = state in ("running", "paused")
    if was_running:
        stopped = hook().virshle_stop(vm=vm, force=force, node=node)
        if not stopped:
            raise VirshleError(f"VM {vm.name!r}: no hypervisor plugin could stop it",
                               code="no_hypervisor")
    if was_running or state == "crashed":
        _detach_all(node, vm)
    store.update(vm, state="shutdown")
    if was_running:
        events.emit(events.VM_STOPPED, node.name, vm=vm.to_json(), force=force)
    return vm, was_running


def _detach_all(node: NodeContext, vm: Vm) -> None:
    for net in vm.nets:
        try:
            detached = hook().virshle_net_detach(vm=vm, net=net, attachment=None, node=node)
        except VirshleError as exc:
            logger.warning("VM {}: net {} could not be detached: {}", vm.name, net.name, exc.message)
            continue
        if detached:
            events.emit(events.NET_DETACHED, node.name, vm=vm.to_json(), net=net.name)


def console(node: NodeContext, vm: Vm):
    """Where the VM's serial console is; NotFound when no plugin knows."""
    endpoint = hook().virshle_console(vm=vm, node=node)
    if endpoint is None:
        raise NotFound(f"VM {vm.name!r} has no console", "Start it first.", code="no_console")
    return endpoint


def refresh(node: NodeContext, store: Store, vm: Vm) -> Vm:
    """Read the live state; record and announce it when it changed."""
    live = live_state(node, vm)
    if live != vm.state:
        old = vm.state
        store.update(vm, state=live)
        logger.info("VM {} is now {} (was {})", vm.name, live, old)
        events.emit(events.VM_STATE_CHANGED, node.name, vm=vm.to_json(), old=old, new=live)
    return vm
