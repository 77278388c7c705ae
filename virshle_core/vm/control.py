"""The verbs on a VM that exists: pause, resume, reboot, its size, and clone (its disks'
snapshots and growth are ``disks.py``'s).

Each checks the VM's state first (a refusal changes nothing), asks the plugins to
do the work through a hook (``virshle_vm_control``, ``virshle_disk_copy``), records
what it leaves, and announces it. Whatever takes room on the node (a bigger VM, a grown disk, a
snapshot, a clone) is admitted against ``[host.limits]`` in the same store
transaction that records it, as a create is.
"""

from __future__ import annotations

import os
import uuid as uuid_lib

from . import admission
from .. import events
from ..wire.api import CloneRequest, RebootRequest, VmChange
from .disks import admit, refuse_active
from ..errors import Conflict, UsageError, VirshleError
from .lifecycle import VM_DIR_MODE, failed_at, live_state, undo_creates, write_user_data
from ..models import ClonedDisk, Disk, Net, NodeContext, Vm
from .names import random_name
from ..hooks import plugins

MIN_VRAM = 32 * 1024**2

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
    done = plugins().vm_control(vm=vm, action=action, force=force, node=node)
    if not done:
        raise VirshleError(f"VM {vm.name!r}: no hypervisor plugin can {action} it "
                           f"(hypervisor {vm.hypervisor!r})", code="no_hypervisor")
    node.store.update(vm, state=leaves)
    data = {"force": force} if action == "reboot" else {}
    events.emit(event, node.name, vm=vm.to_json(), **data)
    return vm


def pause(node: NodeContext, vm: Vm) -> Vm:
    return control(node, vm, "pause")


def resume(node: NodeContext, vm: Vm) -> Vm:
    return control(node, vm, "resume")


def reboot(node: NodeContext, vm: Vm, request: RebootRequest) -> Vm:
    return control(node, vm, "reboot", request.force)


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
        from ..units import human_size

        raise UsageError(f"vram must be at least {human_size(MIN_VRAM)}, not {vram} bytes",
                         code="bad_size")
    refuse_active(node, vm, "resized", "Its next start would use the new size.")
    new_vcpu = vm.vcpu if vcpu is None else vcpu
    new_vram = vm.vram if vram is None else vram
    if (new_vcpu, new_vram) == (vm.vcpu, vm.vram):
        return vm
    what = f"VM {vm.name!r} at its new size"
    if admission.counts_running(node.config.host.limits):
        # Stopped, it holds nothing; but a size it could never start with, even alone, is
        # refused now rather than at every start.
        alone = admission.Need(vcpu=new_vcpu, vram=new_vram, disk=0)
        check = admit(node, alone, what, runs=True)

        def checked(totals: dict[str, int]) -> None:
            check({**totals, "running_vcpu": 0, "running_vram": 0})
    else:
        checked = admit(node, admission.Need(vcpu=max(0, new_vcpu - vm.vcpu),
                                             vram=max(0, new_vram - vm.vram), disk=0), what)
    old = _size_text(vm.vcpu, vm.vram)
    node.store.update_admitted(vm, checked, vcpu=new_vcpu, vram=new_vram)
    events.emit(events.VM_RESIZED, node.name, vm=vm.to_json(),
                what=f"{old} -> {_size_text(vm.vcpu, vm.vram)}")
    return vm


def _size_text(vcpu: int, vram: int) -> str:
    from ..units import human_size

    return f"{vcpu} vcpu, {human_size(vram)}"


# --- clone -----------------------------------------------------------------------------


def clone(node: NodeContext, source: Vm, request: CloneRequest, owner: int = 0) -> Vm:
    """A new VM (owned by uid ``owner``) with a copy of a stopped VM's writable disks, a
    fresh uuid, name and MACs, and its own provisioning (a new cloud-init instance-id)."""
    from ..wire.refs import validate_name

    if request.name is not None:
        validate_name(request.name)
        if request.name in node.store.names():  # said before the limits (the insert checks again)
            raise Conflict(f"a VM named {request.name!r} already exists on node {node.name!r}",
                           "Choose another name for the clone.", code="name_taken")
    refuse_active(node, source, "cloned", "Its disks must not change while they are copied.")
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
    node.store.insert_many([vm], admit=admit(node, need, f"a clone of VM {source.name!r}"),
                           pick_name=random_name)
    template = _template_of(node, source)
    try:
        os.makedirs(vm_dir / "disk", mode=VM_DIR_MODE)
        os.chmod(vm_dir, VM_DIR_MODE)
        for disk, original in zip(vm.disks, writable):
            try:
                copied = plugins().disk_copy(vm=source, disk=original, dest=disk.path, node=node)
            except Exception as exc:
                raise failed_at(template, f"disk {disk.name!r}", exc)
            if copied is None:
                raise VirshleError(f"no plugin could copy disk {disk.name!r} of VM {source.name!r}")
            if isinstance(copied, ClonedDisk):
                disk.format, disk.size = copied.format, copied.size
        write_user_data(vm)
        for disk in plugins().provision(vm=vm, template=template, node=node):
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
    from ..config import VmTemplate

    template = node.config.template(vm.template)
    if template is not None:
        return template
    return VmTemplate(name=vm.template, vcpu=vm.vcpu, vram=vm.vram, kernel=vm.kernel,
                      initramfs=vm.initramfs, cmdline=vm.cmdline, firmware=vm.firmware)
