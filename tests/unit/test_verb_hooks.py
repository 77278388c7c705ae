"""The hooks of the verbs on a VM that exists (pause, resume, reboot, snapshots, disk resize,
clone), called by the core as the daemon calls them; the core's own disk work runs the real
qemu-img (and qemu-io to write into a disk as a guest would)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import blinker
import pytest

from tests.unit.test_hooks import FakeVmm, leftovers
from virshle_core import VirshleError, hookimpl
from virshle_core.vm import disks
from virshle_core.vm import lifecycle
from virshle_core.vm import control as verbs
from virshle_core.wire.api import CloneRequest, VmChange
from virshle_core.errors import Conflict, NotFound, UsageError
from virshle_core.vm.lifecycle import CreateRequest


class ControlledVmm(FakeVmm):
    @hookimpl
    def virshle_vm_control(self, vm, action, force, node):
        self.calls.append((action, vm.name, force))
        return True


def heard(*names: str):
    got = []

    def receiver(sender, **data):
        got.append((data["vm"]["name"], sorted(set(data) - {"vm"})))

    for name in names:
        blinker.signal(name).connect(receiver)
    return got, receiver


def test_hook_virshle_vm_control(register, node):
    fake = register(ControlledVmm())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="ctl"))
    with pytest.raises(Conflict, match="'ctl' is shutdown: only a running VM can be paused"):
        verbs.control(node, vm, "pause")
    assert fake.calls == []  # refused before the hook
    lifecycle.start(node, vm)
    got, receiver = heard("vm-paused", "vm-resumed", "vm-rebooted")
    try:
        assert verbs.control(node, vm, "pause").state == "paused"
        assert node.store.get("ctl").state == "paused"
        verbs.control(node, vm, "reboot", force=True)  # the fake VMM still says running
        assert node.store.get("ctl").state == "running"
    finally:
        for name in ("vm-paused", "vm-resumed", "vm-rebooted"):
            blinker.signal(name).disconnect(receiver)
    assert [c for c in fake.calls if c[0] in ("pause", "reboot")] == [
        ("pause", "ctl", False), ("reboot", "ctl", True)]
    assert got == [("ctl", []), ("ctl", ["force"])]


def test_control_follows_the_live_state(register, node):
    class Vmm(ControlledVmm):
        state = "shutdown"

        @hookimpl
        def virshle_vm_state(self, vm, node):
            return self.state

    fake = register(Vmm())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="live"))
    lifecycle.start(node, vm)
    fake.state = "running"
    verbs.control(node, vm, "pause")
    fake.state = "paused"
    verbs.control(node, vm, "pause")  # paused already: nothing asked of the VMM
    assert [c for c in fake.calls if c[0] == "pause"] == [("pause", "live", False)]
    with pytest.raises(Conflict, match="only a running VM can be rebooted"):
        verbs.control(node, vm, "reboot")
    assert verbs.control(node, vm, "resume").state == "running"
    fake.state = "running"
    verbs.control(node, vm, "reboot", force=True)
    assert ("reboot", "live", True) in fake.calls
    assert node.store.get("live").state == "running"


def qemu_io(path: str, command: str) -> str:
    return subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, path], check=True,
                          capture_output=True, text=True).stdout


def holds(path: str, pattern: int) -> bool:
    """Whether the disk's first 64 KiB are all ``pattern`` (qemu-io reads them as a guest)."""
    read = subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"read -P {pattern:#x} 0 64k", path],
                          capture_output=True, text=True)
    return read.returncode == 0 and "Pattern verification failed" not in read.stdout


def test_hook_virshle_snapshot(register, node):
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="snap"))
    disk = vm.disks[0].path
    qemu_io(disk, "write -P 0xaa 0 64k")
    reserved = node.store.totals()["disk"]  # its disk and its cloud-init seed
    taken = disks.snapshot_create(node, vm, "before")
    assert (taken.name, taken.memory, taken.size) == ("before", False, 256 * 1024)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", disk], check=True,
                                     capture_output=True, text=True).stdout)
    assert [s["name"] for s in info["snapshots"]] == ["before"]  # a qcow2 internal snapshot
    assert node.store.totals()["disk"] == reserved + 256 * 1024  # and the snapshot's
    qemu_io(disk, "write -P 0x55 0 64k")
    assert not holds(disk, 0xaa)
    with pytest.raises(NotFound, match="no snapshot 'nope'.*"):
        disks.snapshot_restore(node, vm, "nope")
    disks.snapshot_restore(node, vm, "before")
    assert holds(disk, 0xaa)
    with pytest.raises(Conflict, match="already has a snapshot 'before'"):
        disks.snapshot_create(node, vm, "before")
    with pytest.raises(UsageError, match="not a snapshot name"):
        disks.snapshot_create(node, vm, "../x")
    with pytest.raises(UsageError, match="only a running VM has memory"):
        disks.snapshot_create(node, vm, "mem", memory=True)

    # a hypervisor plugin answers for the VMs it runs
    calls = []

    class Live(ControlledVmm):
        @hookimpl
        def virshle_snapshot(self, vm, action, snapshot, node):
            if vm.state != "running":
                return None
            calls.append((action, snapshot.name, snapshot.memory))
            return True

    register(Live())
    lifecycle.start(node, vm)
    disks.snapshot_create(node, vm, "live", memory=True)
    disks.snapshot_delete(node, vm, "live")
    assert calls == [("create", "live", True), ("delete", "live", True)]
    with pytest.raises(Conflict, match="holds its disks alone"):
        disks.snapshot_restore(node, vm, "before")
    lifecycle.stop(node, vm, force=True)
    disks.snapshot_delete(node, vm, "before")
    assert [s.name for s in node.store.snapshots(vm)] == []
    assert node.store.totals()["disk"] == reserved
    disks.snapshot_create(node, vm, "kept")
    lifecycle.delete(node, vm)  # its snapshots go with it, and what they reserved
    assert node.store.conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0
    assert node.store.totals()["disk"] == 0


def test_a_failed_snapshot_leaves_no_snapshot(register, node):
    class Broken:
        @hookimpl(tryfirst=True)
        def virshle_snapshot(self, vm, action, snapshot, node):
            raise VirshleError("disk on fire")

    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="burnt"))
    register(Broken())
    with pytest.raises(VirshleError, match="disk on fire"):
        disks.snapshot_create(node, vm, "s1")
    assert node.store.snapshots(vm) == []


def test_snapshots_count_against_the_disk_limit(register, node):
    import shutil

    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="lim"))
    total = shutil.disk_usage(node.root).total
    node.config.host.limits.disk = 1
    vm.disks[0].size = total // 100  # as if its disk were 1% of the host's
    node.store.update(vm)
    with pytest.raises(Conflict, match="cannot take snapshot 'big' of VM 'lim': disk"):
        disks.snapshot_create(node, vm, "big")
    assert node.store.snapshots(vm) == []


def test_hook_virshle_disk_resize(register, node):
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="grow"))
    with pytest.raises(UsageError, match="disks only grow"):
        disks.disk_resize(node, vm, "os", size=1024)
    with pytest.raises(NotFound, match="has no disk 'data'"):
        disks.disk_resize(node, vm, "data", grow=1024)
    disks.disk_resize(node, vm, "os", grow=1024**2)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", vm.disks[0].path],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["virtual-size"] == 256 * 1024 + 1024**2
    assert node.store.get("grow").disks[0].size == 256 * 1024 + 1024**2

    calls = []

    class Zvol:
        @hookimpl
        def virshle_disk_resize(self, vm, disk, size, node):
            calls.append((disk.name, size))
            return size

    register(Zvol())
    disks.disk_resize(node, vm, "os", size=4 * 1024**2)
    assert calls == [("os", 4 * 1024**2)]


def test_resize_is_refused_beyond_the_limits_and_while_running(register, node):
    register(FakeVmm())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="big"))
    node.config.host.limits.cpu = 100
    import os

    with pytest.raises(Conflict, match="limit_exceeded|cannot take VM 'big' at its new size: cpu"):
        verbs.change(node, vm, VmChange(vcpu=(os.cpu_count() or 1) + 1))
    assert node.store.get("big").vcpu == 2  # nothing changed
    verbs.change(node, vm, VmChange(vcpu=1, vram=256 * 1024**2))
    assert (node.store.get("big").vcpu, node.store.get("big").vram) == (1, 256 * 1024**2)
    lifecycle.start(node, vm)
    with pytest.raises(Conflict, match="only be resized while stopped"):
        verbs.change(node, vm, VmChange(vcpu=2))


def test_hook_virshle_disk_copy(register, node):
    (source,) = lifecycle.create(node, CreateRequest(template="xs", name="src"))
    qemu_io(source.disks[0].path, "write -P 0x77 0 64k")
    disks.snapshot_create(node, source, "kept")
    clone = verbs.clone(node, source, CloneRequest(name="copy"))
    assert (clone.name, clone.template, clone.vcpu) == ("copy", "xs", 2)
    assert clone.uuid != source.uuid and clone.nets[0].mac != source.nets[0].mac
    copied = clone.disks[0].path
    assert holds(copied, 0x77)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", copied], check=True,
                                     capture_output=True, text=True).stdout)
    base = json.loads(subprocess.run(["qemu-img", "info", "--output=json", source.disks[0].path],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["backing-filename"] == base["backing-filename"]  # the same cached image
    assert not info.get("snapshots")  # the source's snapshots stay with it
    assert node.store.snapshots(clone) == []
    with pytest.raises(Conflict, match="already exists"):
        verbs.clone(node, source, CloneRequest(name="copy"))
    assert sorted(vm.name for vm in node.store.all()) == ["copy", "src"]

    calls = []

    class Reflink:
        @hookimpl
        def virshle_disk_copy(self, vm, disk, dest, node):
            calls.append((vm.name, disk.name))
            Path(dest).write_bytes(b"reflinked")
            from virshle_core.models import ClonedDisk

            return ClonedDisk(format="raw", size=9)

    register(Reflink())
    other = verbs.clone(node, source, CloneRequest())
    assert calls == [("src", "os")] and other.disks[0].format == "raw" and other.name


def test_a_failed_clone_leaves_nothing(register, node):
    class Broken:
        @hookimpl
        def virshle_disk_copy(self, vm, disk, dest):
            Path(dest).write_text("half")
            raise OSError("disk full")

    (source,) = lifecycle.create(node, CreateRequest(template="xs", name="orig"))
    register(Broken())
    with pytest.raises(VirshleError, match="disk full"):
        verbs.clone(node, source, CloneRequest(name="half"))
    assert [vm.name for vm in node.store.all()] == ["orig"]
    assert leftovers(node) == [source.uuid]


def test_a_raw_disk_gets_an_overlay_at_its_first_snapshot(register, node):
    """A raw disk (a reflink copy on btrfs or XFS) holds no snapshots: at the first one it
    is kept as it is, as the backing file of a qcow2 overlay; clones copy that base too."""
    import shutil

    class RawCopies:
        @hookimpl
        def virshle_disk_clone(self, source, dest):
            shutil.copyfile(source, dest)
            from virshle_core.models import ClonedDisk

            return ClonedDisk(format="raw", size=Path(source).stat().st_size)

    register(RawCopies())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="raw"))
    disk = vm.disks[0].path
    assert vm.disks[0].format == "raw"
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x11 0 64k", disk], check=True,
                   capture_output=True)
    register(ControlledVmm())
    lifecycle.start(node, vm)
    with pytest.raises(UsageError, match="is a raw file, which holds no snapshots"):
        disks.snapshot_create(node, vm, "live")
    lifecycle.stop(node, vm, force=True)

    disks.snapshot_create(node, vm, "first")
    assert node.store.get("raw").disks[0].format == "qcow2"
    assert Path(f"{disk}.base").exists()
    qemu_io(disk, "write -P 0x22 0 64k")
    assert not holds(disk, 0x11)
    disks.snapshot_restore(node, vm, "first")
    assert holds(disk, 0x11)

    clone = verbs.clone(node, vm, CloneRequest(name="raw-copy"))
    lifecycle.delete(node, vm)  # the clone has its own base
    assert holds(clone.disks[0].path, 0x11)
