"""Create, start, stop and delete VMs: the hooks in order, all or nothing, journalled.

Each step that makes something pushes its undo onto a stack; if a later
step fails, the stack unwinds in reverse and the error names the step.

Every operation writes its journal entry (the row's ``pending`` column)
before it touches anything, and clears it when it is done. A create first
admits its VMs against the node's limits and writes their rows as
``creating`` in one transaction; only then are their files made, and only
when all of them exist do the rows become VMs. ``reconcile`` runs when a
daemon starts and finishes or undoes whatever a crash interrupted.
"""

from __future__ import annotations

import os
import shutil
import uuid as uuid_lib
from pathlib import Path

from .. import events
from ..wire.api import CreateRequest
from ..host.images import check_if_marked, repair_leaks
from .intake import check_request
from ..config import VmTemplate
from ..errors import Cancelled, Conflict, NotFound, UsageError, VirshleError
from ..log import logger
from ..models import ClonedDisk, Disk, Net, NodeContext, Vm
from .names import random_name
from ..hooks import plugins
from ..progress import check_cancelled
from ..store.store import Store
from .undo import Undo
from .userdata import USER_DATA_MODE

VM_DIR_MODE = 0o750


def create(node: NodeContext, request: CreateRequest, owner: int = 0) -> list[Vm]:
    """Create ``request.count`` VMs from a template, owned by uid ``owner``; all of them,
    or none.

    Refused (Conflict ``limit_exceeded``) when they do not fit under the
    node's ``[host.limits]``; stopped (``Cancelled``) and undone when the
    thread's cancel flag is set (see ``virshle_core.progress``).
    """
    from . import admission
    from ..host.downloads import fetch
    from ..host.images import image_format, virtual_size

    template, names, user_data = check_request(node, request)
    images: dict[str, tuple[str, int, Path]] = {}
    for disk in template.disk:
        source = (fetch(disk.path, disk.sha256 or "", node.root / "cache",
                        node.config.host.downloads) if disk.is_url
                  else disk.expanded_path)
        fmt = image_format(source)
        images[disk.name] = (fmt, virtual_size(source, fmt), source)
    vms = [_new_vm(node, template, name, user_data, images) for name in names]
    for vm in vms:
        vm.autostart, vm.owner_uid = request.autostart, owner
        try:
            plugins().pre_create(vm=vm, template=template, node=node)
        except Exception as exc:
            raise failed_at(template, "pre-create checks", exc)

    count = len(vms)
    need = admission.Need(vcpu=template.vcpu * count, vram=template.vram * count,
                          disk=sum(size for _, size, _ in images.values()) * count)
    capacity = admission.Capacity.of_host(str(node.root))
    what = (f"{count} VMs of template {template.name!r}" if count > 1
            else f"a VM of template {template.name!r}")

    def admit(totals: dict[str, int]) -> None:
        admission.check(node.name, node.config.host.limits, capacity, totals, need, what)

    node.store.insert_many(vms, admit=admit, pick_name=random_name)
    try:
        for vm in vms:
            check_cancelled()
            _make_files(node, template, vm)
        check_cancelled()
        node.store.finish_creating(vms)
    except BaseException as exc:
        undo_creates(node.store, vms)
        if isinstance(exc, Cancelled):
            exc.message = f"{exc.message}; the create of {what} was undone"
            exc.args = (exc.message,)
        raise
    for vm in vms:
        events.emit(events.VM_CREATED, node.name, vm=vm.to_json())
    return vms


def _new_vm(node: NodeContext, template: VmTemplate, name: str | None, user_data: str | None,
            images: dict[str, tuple[str, int, Path]]) -> Vm:
    """A VM of ``template``, not made yet: ``images`` has each disk's (format, size, file)."""
    vm_uuid = str(uuid_lib.uuid4())
    vm_dir = node.root / "vm" / vm_uuid
    return Vm(
        id=None, uuid=vm_uuid, name=name or "", node=node.name, template=template.name,
        vcpu=template.vcpu, vram=template.vram,
        disks=[Disk(name=d.name, path=str(vm_dir / "disk" / d.name), size=images[d.name][1],
                    readonly=d.readonly, source=str(images[d.name][2]),
                    format=images[d.name][0]) for d in template.disk],
        nets=[Net(name=n.name, type=n.type, options=dict(n.options)) for n in template.net],
        kernel=_expand(template.kernel), initramfs=_expand(template.initramfs),
        cmdline=template.cmdline, firmware=_expand(template.firmware),
        hypervisor=plugins().hypervisor(wanted=node.config.host.hypervisor, node=node),
        user_data=user_data, dir=str(vm_dir), pending="creating",
    )


def _make_files(node: NodeContext, template: VmTemplate, vm: Vm) -> None:
    """The VM's directory, disks and user-data (its row exists, marked ``creating``)."""
    vm_dir = vm.path
    step = "VM directory"
    try:
        (vm_dir / "disk").mkdir(mode=VM_DIR_MODE, parents=True)
        os.chmod(vm_dir, VM_DIR_MODE)
        for disk, template_disk in zip(vm.disks, template.disk):
            step = f"disk {disk.name!r}"
            result = plugins().disk_clone(source=disk.source, dest=disk.path, disk=template_disk,
                                        node=node)
            if not result:
                raise VirshleError(f"no plugin could clone disk {disk.name!r}")
            if isinstance(result, dict):  # what plugins written before ClonedDisk return
                result = ClonedDisk(format=result.get("format", disk.format),
                                    size=result.get("size", disk.size))
            disk.format, disk.size = result.format, result.size
        step = "user-data"
        write_user_data(vm)
        step = "provisioning"
        for disk in plugins().provision(vm=vm, template=template, node=node):
            disk.readonly = True  # a seed is read, never written
            vm.disks.append(disk)
    except Cancelled:
        raise
    except Exception as exc:
        raise failed_at(template, step, exc)


def write_user_data(vm: Vm) -> None:
    """The VM's user-data, kept beside its disks (0600: it may hold passwords)."""
    if vm.user_data is None:
        return
    fd = os.open(vm.path / "user-data", os.O_WRONLY | os.O_CREAT | os.O_EXCL, USER_DATA_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(vm.user_data)


def failed_at(template: VmTemplate, step: str, exc: Exception) -> VirshleError:
    """The error of a create step, saying which step failed (the error's class is kept)."""
    if isinstance(exc, VirshleError):
        if not exc.message.startswith("creating"):
            exc.message = f"creating a VM from template {template.name!r} failed at {step}: {exc.message}"
            exc.args = (exc.message,)
        return exc
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
    return VirshleError(
        f"creating a VM from template {template.name!r} failed at {step}: {detail}{where}",
        "Nothing was left behind; run the daemon with -vv for details.",
    )


def undo_creates(store: Store, vms: list[Vm]) -> None:
    """Remove what a create made: directories first, then the rows (the journal)."""
    for vm in vms:
        shutil.rmtree(vm.path, ignore_errors=True)
    try:
        store.delete_many([vm for vm in vms if vm.id is not None])
    except Exception as exc:
        logger.error("rollback: could not remove the rows of {} VM(s): {}; the next daemon start "
                     "removes them", len(vms), exc)


def _expand(path: str | None) -> str | None:
    return str(Path(path).expanduser()) if path else None


def delete(node: NodeContext, vm: Vm, force: bool = False) -> Vm:
    """Remove a VM: stop it (with ``force``), release its resources, drop its row."""
    state = live_state(node, vm)
    if state in ("running", "paused") and not force:
        raise Conflict(
            f"VM {vm.name!r} is {state}",
            f"Stop it first with `virshle vm stop --name {vm.name}`, or use `vm rm --force`.",
            code="vm_running",
        )
    node.store.mark(vm, "deleting")
    try:
        if state in ("running", "paused"):
            plugins().stop(vm=vm, force=True, node=node)
    except BaseException:
        node.store.mark(vm, None)
        raise
    # its NICs may still exist unless both the VMM and the row say it never ran or ended cleanly
    release(node, vm, detach=not {state, vm.state} <= {"created", "shutdown"})
    events.emit(events.VM_DELETED, node.name, vm=vm.to_json())
    return vm


def release(node: NodeContext, vm: Vm, detach: bool = True) -> None:
    """The end of a delete: NICs, what plugins hold, the directory, then the row."""
    if detach:  # its NICs may still exist (running, crashed, or interrupted)
        detach_all(node, vm)
    plugins().post_delete(vm=vm, node=node)
    shutil.rmtree(vm.path, ignore_errors=True)
    node.store.delete(vm)


def live_state(node: NodeContext, vm: Vm) -> str:
    """The VM's state from its VMM, falling back to the last state recorded."""
    try:
        state = plugins().vm_state(vm=vm, node=node)
    except Exception as exc:
        logger.warning("reading the state of VM {} failed: {}", vm.name, exc)
        state = None
    return state or vm.state


def with_ips(node: NodeContext, vms: list[Vm]) -> list[Vm]:
    """Fill each VM's ``ips`` from one batched ``virshle_lease_query``."""
    if not vms or not any(vm.nets for vm in vms):
        return vms
    try:
        leases = plugins().lease_query(vms=vms, node=node)
    except Exception as exc:
        logger.warning("lease query failed: {}", exc)
        return vms
    by_mac: dict[str, list[str]] = {}
    for lease in leases:
        by_mac.setdefault(lease.mac.lower(), []).append(lease.ip)
    for vm in vms:
        vm.ips = [ip for net in vm.nets if net.mac for ip in by_mac.get(net.mac.lower(), [])]
    return vms


def start(node: NodeContext, vm: Vm) -> Vm:
    """Attach every NIC, then boot the VMM; undo the attachments if the boot fails."""
    from . import admission

    state = live_state(node, vm)
    if state in ("running", "paused"):
        raise Conflict(f"VM {vm.name!r} is already {state}",
                       f"Stop it with `virshle vm stop --name {vm.name}`.", code="vm_running")
    if vm.hypervisor is None:  # none answered at create (none was installed): ask again
        vm.hypervisor = plugins().hypervisor(wanted=node.config.host.hypervisor, node=node)
    check_if_marked(vm)  # a disk verb failed on its disks since: their leaks go first
    limits = node.config.host.limits
    if admission.counts_running(limits):  # its vcpu and vram are held from now on
        need = admission.Need(vcpu=vm.vcpu, vram=vm.vram, disk=0)
        capacity = admission.Capacity.of_host(str(node.root))
        node.store.mark_admitted(vm, "starting", lambda totals: admission.check(
            node.name, limits, capacity, totals, need, f"VM {vm.name!r} running", runs=True))
    else:
        node.store.mark(vm, "starting")
    undo = Undo()
    attachments: list = []
    try:
        attachments = attach_all(node, vm, undo)
        handle = plugins().start(vm=vm, attachments=attachments, node=node)
        if handle is None:
            raise VirshleError(
                f"VM {vm.name!r}: no hypervisor plugin could start it "
                f"(hypervisor {vm.hypervisor or node.config.host.hypervisor!r})",
                "Hypervisor plugins: " + (", ".join(plugins().implementers("start")) or "none")
                + ". Check [host] hypervisor.",
                code="no_hypervisor",
            )
    except BaseException:
        undo.run()
        node.store.mark(vm, None)
        raise
    finally:
        close_descriptors(attachments)
    node.store.update(vm, state="running", hypervisor=handle.hypervisor, pending=None)
    events.emit(events.VM_STARTED, node.name, vm=vm.to_json(), pid=handle.pid)
    return vm


def attach_all(node: NodeContext, vm: Vm, undo: Undo) -> list:
    """Attach every NIC of ``vm`` (each one's detach pushed onto ``undo``); its attachments."""
    attachments = []
    for net in vm.nets:
        attachment = plugins().net_attach(vm=vm, net=net, node=node)
        if attachment is None:
            raise UsageError(
                f"VM {vm.name!r}: no plugin handles net type {net.type!r} (net {net.name!r})",
                "Plugins that attach nets: " + (", ".join(plugins().implementers("net_attach")) or "none")
                + ". Install one, or fix [template.vm.net.type.*].",
                code="unknown_net_type",
            )
        attachments.append(attachment)
        undo.push(f"net {net.name}", lambda net=net, a=attachment: plugins().net_detach(
            vm=vm, net=net, attachment=a, node=node))
        events.emit(events.NET_ATTACHED, node.name, vm=vm.to_json(), net=net.name,
                    ifname=attachment.ifname)
    return attachments


def close_descriptors(attachments: list) -> None:
    """The VMM inherited its own copies of NIC descriptors (macvtap); ours go."""
    for attachment in attachments:
        for fd in attachment.fds:
            try:
                os.close(fd)
            except OSError:
                pass


def stop(node: NodeContext, vm: Vm, force: bool = False) -> tuple[Vm, bool]:
    """Stop the VM and detach its NICs; returns (vm, whether it was running).

    A VM that is not running keeps the state it has (``created`` stays
    ``created``); a crashed one loses its NICs and reads ``shutdown``.
    """
    state = live_state(node, vm)
    was_running = state in ("running", "paused")
    if was_running:
        node.store.mark(vm, "stopping")
        try:
            stopped = plugins().stop(vm=vm, force=force, node=node)
            if not stopped:
                raise VirshleError(f"VM {vm.name!r}: no hypervisor plugin could stop it",
                                   code="no_hypervisor")
        except BaseException:
            node.store.mark(vm, None)
            raise
    return finish_stop(node, vm, state, force), was_running


def finish_stop(node: NodeContext, vm: Vm, state: str, force: bool = False) -> Vm:
    """After the VMM of ``vm`` (which was ``state``) is gone: its NICs, its row, the event."""
    was_running = state in ("running", "paused")
    if was_running or state == "crashed":
        detach_all(node, vm)
    if (was_running and force) or state == "crashed":  # killed, maybe in the middle of a write
        repair_leaks(vm)
    node.store.update(vm, state="shutdown" if was_running or state == "crashed" else state, pending=None)
    if was_running:
        events.emit(events.VM_STOPPED, node.name, vm=vm.to_json(), force=force)
    return vm


def detach_all(node: NodeContext, vm: Vm) -> None:
    """Remove the host side of every NIC of ``vm`` (its VMM ended, or never came up)."""
    for net in vm.nets:
        try:
            detached = plugins().net_detach(vm=vm, net=net, attachment=None, node=node)
        except VirshleError as exc:
            logger.warning("VM {}: net {} could not be detached: {}", vm.name, net.name, exc.message)
            continue
        if detached:
            events.emit(events.NET_DETACHED, node.name, vm=vm.to_json(), net=net.name)


def console(node: NodeContext, vm: Vm):
    """Where the VM's serial console is; NotFound when no plugin knows."""
    endpoint = plugins().console(vm=vm, node=node)
    if endpoint is None:
        raise NotFound(f"VM {vm.name!r} has no console", "Start it first.", code="no_console")
    return endpoint


def refresh(node: NodeContext, vm: Vm) -> Vm:
    """Read the live state; record and announce it when it changed."""
    if vm.pending:
        return vm  # an operation is under way; it records the state it leaves
    live = live_state(node, vm)
    if live != vm.state:
        old = vm.state
        if old in ("running", "paused") and live in ("shutdown", "crashed"):
            end_vmm(node, vm)  # what a stop leaves: no process lingering, no NIC
        node.store.update(vm, state=live)
        logger.info("VM {} is now {} (was {})", vm.name, live, old)
        events.emit(events.VM_STATE_CHANGED, node.name, vm=vm.to_json(), old=old, new=live)
    return vm


def end_vmm(node: NodeContext, vm: Vm) -> None:
    """A VM found powered off or crashed: end its VMM if it lingers (QEMU runs with
    ``-no-shutdown``), remove its files and its NICs. ``virshle_vm_state`` only reads."""
    try:
        plugins().stop(vm=vm, force=True, node=node)
    except Exception as exc:
        logger.warning("VM {}: ending its VMM failed: {}", vm.name, exc)
    detach_all(node, vm)
    repair_leaks(vm)
