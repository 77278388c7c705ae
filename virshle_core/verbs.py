"""The verbs on a VM that exists: pause, resume, reboot, resize, snapshots and clone.

Each checks the VM's state first (a refusal changes nothing), asks the plugins to
do the work through a hook (``virshle_vm_control``, ``virshle_snapshot``,
``virshle_disk_resize``, ``virshle_disk_copy``), records what it leaves, and
announces it. Whatever takes room on the node (a bigger VM, a grown disk, a
snapshot, a clone) is admitted against ``[host.limits]`` in the same store
transaction that records it, as a create is.
"""

from __future__ import annotations

import os
import re
import uuid as uuid_lib

from . import admission, events
from .api import CloneRequest, Snapshot, VmChange
from .errors import Conflict, NotFound, UsageError, VirshleError
from .lifecycle import VM_DIR_MODE, failed_at, live_state, undo_creates
from .models import ClonedDisk, Disk, Net, NodeContext, Vm
from .names import random_name
from .plugins import hooks

ACTIVE = ("running", "paused")
MIN_VRAM = 32 * 1024**2
SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# what each control asks of the VM's state, and the state it leaves
CONTROLS = {
    "pause": (("running",), "paused", events.VM_PAUSED),
    "resume": (("paused",), "running", events.VM_RESUMED),
    "reboot": (("running",), "running", events.VM_REBOOTED),
}
CONTROLLED = {"pause": "paused", "resume": "resumed", "reboot": "rebooted"}


def control(node: NodeContext, vm: Vm, action: str, force: bool = False) -> Vm:
    """Pause, resume or reboot ``vm``. Pausing a paused VM, or resuming a running one, is
    done already: nothing happens."""
    wanted, leaves, event = CONTROLS[action]
    state = live_state(node, vm)
    if state == leaves and action != "reboot":
        return vm
    if state not in wanted:
        # what would bring it to the state the verb wants
        step = {"paused": "resume", "running": "pause"}.get(state, "start")
        raise Conflict(f"VM {vm.name!r} is {state}: only a {' or '.join(wanted)} VM can be "
                       f"{CONTROLLED[action]}",
                       f"{step.capitalize()} it first: `virshle vm {step} {vm.name}`.",
                       code="vm_not_paused" if state == "running" else "vm_not_running")
    done = hooks().vm_control(vm=vm, action=action, force=force, node=node)
    if not done:
        raise VirshleError(f"VM {vm.name!r}: no hypervisor plugin can {action} it "
                           f"(hypervisor {vm.hypervisor!r})", code="no_hypervisor")
    node.store.update(vm, state=leaves)
    data = {"force": force} if action == "reboot" else {}
    events.emit(event, node.name, vm=vm.to_json(), **data)
    return vm


# --- settings and sizes ----------------------------------------------------------------


def change(node: NodeContext, vm: Vm, request: VmChange) -> Vm:
    """``vm set``: autostart at any time; vcpu and vram of a stopped VM, within the limits."""
    if request.vcpu is not None or request.vram is not None:
        resize(node, vm, request.vcpu, request.vram)
    if request.autostart is not None:
        node.store.update(vm, autostart=request.autostart)
    return vm


def resize(node: NodeContext, vm: Vm, vcpu: int | None, vram: int | None) -> Vm:
    if vcpu is not None and vcpu < 1:
        raise UsageError(f"vcpu must be at least 1, not {vcpu}", code="bad_size")
    if vram is not None and vram < MIN_VRAM:
        from .units import human_size

        raise UsageError(f"vram must be at least {human_size(MIN_VRAM)}, not {vram} bytes",
                         code="bad_size")
    _refuse_active(node, vm, "resized", "Its next start would use the new size.")
    new_vcpu = vm.vcpu if vcpu is None else vcpu
    new_vram = vm.vram if vram is None else vram
    if (new_vcpu, new_vram) == (vm.vcpu, vm.vram):
        return vm
    need = admission.Need(vcpu=max(0, new_vcpu - vm.vcpu), vram=max(0, new_vram - vm.vram), disk=0)
    old = _size_text(vm.vcpu, vm.vram)
    node.store.update_admitted(vm, _admit(node, need, f"VM {vm.name!r} at its new size"),
                               vcpu=new_vcpu, vram=new_vram)
    events.emit(events.VM_RESIZED, node.name, vm=vm.to_json(),
                what=f"{old} -> {_size_text(vm.vcpu, vm.vram)}")
    return vm


def _size_text(vcpu: int, vram: int) -> str:
    from .units import human_size

    return f"{vcpu} vcpu, {human_size(vram)}"


def disk_resize(node: NodeContext, vm: Vm, disk_name: str, size: int | None = None,
                grow: int | None = None) -> Vm:
    """Grow one writable disk of a stopped VM to ``size`` bytes, or by ``grow`` bytes."""
    from .units import human_size

    disk = next((d for d in vm.disks if d.name == disk_name), None)
    if disk is None:
        raise NotFound(f"VM {vm.name!r} has no disk {disk_name!r}",
                       "Its disks: " + ", ".join(d.name for d in vm.disks) + ".",
                       code="disk_not_found")
    if disk.readonly:
        raise UsageError(f"VM {vm.name!r}: disk {disk_name!r} is read-only; it is never resized",
                         code="bad_size")
    if (size is None) == (grow is None):
        raise UsageError("say the disk's new size, or how much to add (one of size, grow)",
                         code="bad_size")
    old = disk.size or 0
    new = size if size is not None else old + grow
    if new <= old:
        raise UsageError(f"VM {vm.name!r}: disk {disk_name!r} is {human_size(old)}; disks only "
                         f"grow, and {human_size(new)} is not more",
                         "Give a bigger size, or +SIZE to add.", code="bad_size")
    _refuse_active(node, vm, "resized", "Its disk can grow while it is stopped.")
    need = admission.Need(vcpu=0, vram=0, disk=new - old)
    disk.size = new  # reserved first, in the admitting transaction; given back on failure
    reserved = False
    try:
        node.store.update_admitted(vm, _admit(node, need, f"disk {disk_name!r} of VM {vm.name!r} "
                                              f"at {human_size(new)}"))
        reserved = True
        if hooks().disk_resize(vm=vm, disk=disk, size=new, node=node) is None:
            raise VirshleError(f"VM {vm.name!r}: no plugin could resize disk {disk_name!r}")
    except BaseException:
        disk.size = old
        if reserved:
            node.store.update(vm)
        raise
    events.emit(events.VM_RESIZED, node.name, vm=vm.to_json(),
                what=f"disk {disk_name} {human_size(old)} -> {human_size(new)}")
    return vm


def _refuse_active(node: NodeContext, vm: Vm, done: str, why: str) -> None:
    state = live_state(node, vm)
    if state in ACTIVE:
        raise Conflict(f"VM {vm.name!r} is {state}: it can only be {done} while stopped",
                       f"Stop it first with `virshle vm stop {vm.name}`. {why}",
                       code="vm_running")


def _admit(node: NodeContext, need: admission.Need, what: str):
    capacity = admission.Capacity.of_host(str(node.root))

    def admit(totals: dict[str, int]) -> None:
        admission.check(node.name, node.config.host.limits, capacity, totals, need, what)

    return admit


# --- snapshots -------------------------------------------------------------------------


def snapshot_create(node: NodeContext, vm: Vm, name: str, memory: bool = False) -> Snapshot:
    """Take snapshot ``name`` of the VM's writable disks (and, ``memory``, of the running
    guest); it reserves its disks' sizes (and the VM's memory) against the limits."""
    if not SNAPSHOT_NAME.fullmatch(name):
        raise UsageError(f"{name!r} is not a snapshot name",
                         "Use up to 64 letters, digits, '.', '_' or '-', starting with a letter "
                         "or digit.", code="bad_name")
    state = live_state(node, vm)
    vm.state = state
    if memory and state not in ACTIVE:
        raise UsageError(f"VM {vm.name!r} is {state}: only a running VM has memory to keep",
                         "Leave out --memory: a stopped VM's snapshot is its disks.",
                         code="vm_not_running")
    from .images import check_snapshot_disks, overlay_on_itself, snapshot_disks

    if state not in ACTIVE:  # a raw disk is kept as it is, under an overlay that holds them
        for disk in snapshot_disks(vm):
            if disk.format == "raw":
                overlay_on_itself(disk)
                node.store.update(vm)
    disks = check_snapshot_disks(vm)  # qcow2 each, whoever takes the snapshot
    if not disks:
        raise UsageError(f"VM {vm.name!r} has no writable disk to snapshot", code="not_supported")
    size = sum(d.size or 0 for d in disks) + (vm.vram if memory else 0)
    snapshot = Snapshot(name=name, vm=vm.name, memory=memory, state=state, size=size)
    need = admission.Need(vcpu=0, vram=0, disk=size)
    node.store.add_snapshot(vm, snapshot, admit=_admit(node, need, f"snapshot {name!r} of VM "
                                                       f"{vm.name!r}"))
    try:
        _snapshot_hook(node, vm, "create", snapshot)
    except BaseException:
        node.store.remove_snapshot(vm, name)
        raise
    events.emit(events.SNAPSHOT_CREATED, node.name, vm=vm.to_json(), snapshot=snapshot.to_json())
    return snapshot


def snapshot_restore(node: NodeContext, vm: Vm, name: str) -> Vm:
    """Bring the VM's disks back to snapshot ``name`` (a stopped VM), or, for a snapshot
    with memory, the running guest too."""
    snapshot = node.store.snapshot(vm, name)
    state = live_state(node, vm)
    vm.state = state
    if state in ACTIVE and not snapshot.memory:
        raise Conflict(f"VM {vm.name!r} is {state}, and snapshot {name!r} holds its disks alone: "
                       "they are restored while it is stopped",
                       f"Stop it with `virshle vm stop {vm.name}`, then restore.",
                       code="vm_running")
    _snapshot_hook(node, vm, "restore", snapshot)
    if state in ACTIVE:
        node.store.update(vm, state=live_state(node, vm))
    events.emit(events.SNAPSHOT_RESTORED, node.name, vm=vm.to_json(), snapshot=snapshot.to_json())
    return vm


def snapshot_delete(node: NodeContext, vm: Vm, name: str) -> Snapshot:
    snapshot = node.store.snapshot(vm, name)
    vm.state = live_state(node, vm)
    _snapshot_hook(node, vm, "delete", snapshot)
    node.store.remove_snapshot(vm, name)
    events.emit(events.SNAPSHOT_DELETED, node.name, vm=vm.to_json(), snapshot=snapshot.to_json())
    return snapshot


def _snapshot_hook(node: NodeContext, vm: Vm, action: str, snapshot: Snapshot) -> None:
    if not hooks().snapshot(vm=vm, action=action, snapshot=snapshot, node=node):
        raise Conflict(f"VM {vm.name!r} is {vm.state}, and its hypervisor ({vm.hypervisor}) "
                       "cannot snapshot a running VM",
                       f"Stop it first with `virshle vm stop {vm.name}`.", code="not_supported")


# --- clone -----------------------------------------------------------------------------


def clone(node: NodeContext, source: Vm, request: CloneRequest, owner: int = 0) -> Vm:
    """A new VM (owned by uid ``owner``) with a copy of a stopped VM's writable disks, a
    fresh uuid, name and MACs, and its own provisioning (a new cloud-init instance-id)."""
    from .refs import validate_name

    if request.name is not None:
        validate_name(request.name)
        if request.name in node.store.names():  # said before the limits (the insert checks again)
            raise Conflict(f"a VM named {request.name!r} already exists on node {node.name!r}",
                           "Choose another name for the clone.", code="name_taken")
    _refuse_active(node, source, "cloned", "Its disks must not change while they are copied.")
    new_uuid = str(uuid_lib.uuid4())
    vm_dir = node.root / "vm" / new_uuid
    writable = [d for d in source.disks if not d.readonly]
    vm = Vm(
        id=None, uuid=new_uuid, name=request.name or "", node=node.name, template=source.template,
        vcpu=source.vcpu, vram=source.vram,
        disks=[Disk(name=d.name, path=str(vm_dir / "disk" / d.name), size=d.size, source=d.source,
                    format=d.format) for d in writable],
        nets=[Net(name=n.name, type=n.type, options=dict(n.options)) for n in source.nets],
        kernel=source.kernel, initramfs=source.initramfs, cmdline=source.cmdline,
        firmware=source.firmware, hypervisor=source.hypervisor, user_data=source.user_data,
        dir=str(vm_dir), pending="creating", autostart=request.autostart, owner_uid=owner,
    )
    need = admission.Need(vcpu=vm.vcpu, vram=vm.vram, disk=sum(d.size or 0 for d in writable))
    node.store.insert_many([vm], admit=_admit(node, need, f"a clone of VM {source.name!r}"),
                           pick_name=random_name)
    template = _template_of(node, source)
    try:
        os.makedirs(vm_dir / "disk", mode=VM_DIR_MODE)
        os.chmod(vm_dir, VM_DIR_MODE)
        for disk, original in zip(vm.disks, writable):
            try:
                copied = hooks().disk_copy(vm=source, disk=original, dest=disk.path, node=node)
            except Exception as exc:
                raise failed_at(template, f"disk {disk.name!r}", exc)
            if copied is None:
                raise VirshleError(f"no plugin could copy disk {disk.name!r} of VM {source.name!r}")
            if isinstance(copied, ClonedDisk):
                disk.format, disk.size = copied.format, copied.size
        for disk in hooks().provision(vm=vm, template=template, node=node):
            disk.readonly = True
            vm.disks.append(disk)
        node.store.finish_creating([vm])
    except BaseException:
        undo_creates(node.store, [vm])
        raise
    events.emit(events.VM_CREATED, node.name, vm=vm.to_json())
    return vm


def _template_of(node: NodeContext, vm: Vm):
    """The template ``vm`` came from, as the node offers it now (its SSH keys for the clone's
    seed), or one made of the VM itself when the node no longer offers it."""
    from .config import VmTemplate

    template = node.config.template(vm.template)
    if template is not None:
        return template
    return VmTemplate(name=vm.template, vcpu=vm.vcpu, vram=vm.vram, kernel=vm.kernel,
                      initramfs=vm.initramfs, cmdline=vm.cmdline, firmware=vm.firmware)
