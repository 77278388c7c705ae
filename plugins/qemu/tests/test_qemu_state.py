"""``virshle_vm_state`` only reads: a guest that powered off leaves its QEMU (run with
``-no-shutdown``) for the daemon to end through ``virshle_stop``, and reading changes nothing."""

from __future__ import annotations

import shutil
import uuid

import pytest

from virshle_core.models import Vm
from virshle_core.testing import MARKER, short_dir, wait_for
from virshle_qemu import QemuConfig
from virshle_qemu.vmm import alive, qmp, read_pid, start, state, stop

pytestmark = [pytest.mark.e2e]
if not shutil.which("qemu-system-x86_64"):
    pytestmark.append(pytest.mark.skip(reason="qemu-system-x86_64 is not installed"))


def test_reading_a_powered_off_guest_changes_nothing(guest):
    directory = short_dir("qs")
    vm = Vm(id=1, uuid=str(uuid.uuid4()), name="reader", node="n", template="t", vcpu=1,
            vram=256 * 1024**2, kernel=str(guest / "vmlinuz"), initramfs=str(guest / "initramfs.gz"),
            cmdline="console=ttyS0 quiet panic=-1", hypervisor="qemu", dir=str(directory))
    start(vm, [], QemuConfig(accel="tcg"))
    pid = read_pid(vm)
    try:
        log = directory / "console.log"
        wait_for(lambda: log.exists() and MARKER in log.read_text(errors="replace"), timeout=90,
                 what="the guest to boot")

        def powered_off() -> bool:  # once the guest listens to the button
            if qmp(vm, "query-status")["status"] != "shutdown":
                qmp(vm, "system_powerdown")
            return qmp(vm, "query-status")["status"] == "shutdown"

        wait_for(powered_off, timeout=60, every=2, what="the guest to power off")
        assert state(vm) == "shutdown"
        assert state(vm) == "shutdown"  # read twice: still there, still powered off
        assert alive(pid, vm) and (directory / "qmp.sock").exists()
        stop(vm, force=True, timeout=10)  # what the daemon does with what it found
        assert not alive(pid, vm) and not (directory / "vmm.pid").exists()
    finally:
        stop(vm, force=True, timeout=10)
