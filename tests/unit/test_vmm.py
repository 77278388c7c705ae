"""The core's VMM-process helpers (virshle_core.vmm), which every hypervisor plugin uses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from virshle_core import vmm
from virshle_core.models import Vm
from virshle_core.testing import wait_for


def test_read_pid(tmp_path):
    assert vmm.read_pid(tmp_path / "absent") is None
    (tmp_path / "bad").write_text("not a pid\n")
    assert vmm.read_pid(tmp_path / "bad") is None
    (tmp_path / "good").write_text("1234\n")
    assert vmm.read_pid(tmp_path / "good") == 1234


def test_alive_kill_and_wait_leave_no_zombie():
    child = subprocess.Popen(["sh", "-c", "sleep 30; :", "virshle-test-marker"])
    try:  # alive once it has exec'd: until then its command line is still ours
        wait_for(lambda: vmm.alive(child.pid, b"virshle-test-marker"), timeout=10, what="sh")
        assert vmm.alive(child.pid, b"virshle-test-marker", program=b"sh")
        assert not vmm.alive(child.pid, b"another-vm")  # a pid reused by someone else
        assert not vmm.alive(child.pid, b"virshle-test-marker", program=b"qemu")
        assert not vmm.wait_gone(child.pid, lambda p: vmm.alive(p, b"virshle-test-marker"), 0.1)
        vmm.kill(child.pid)
        assert vmm.wait_gone(child.pid, lambda p: vmm.alive(p, b"virshle-test-marker"), 5)
        assert not Path(f"/proc/{child.pid}").exists()  # reaped, not a zombie
        vmm.kill(child.pid)  # already gone: fine
    finally:
        if Path(f"/proc/{child.pid}").exists():
            child.kill()
            child.wait()


def test_vmm_hooks_answer_only_for_their_own_vms(tmp_path):
    hooks = vmm.VmmHooks("fakevisor", "virshle_core")
    stop, state, watch, console = hooks.hooks()
    theirs = Vm(id=1, uuid="u1", name="a", node="n", template="t", vcpu=1, vram=1,
                hypervisor="qemu", dir=str(tmp_path))
    assert stop(vm=theirs, force=True, node=None) is None
    assert state(vm=theirs, node=None) is None
    assert watch(vm=theirs, node=None) is None
    assert console(vm=theirs, node=None) is None
    mine = Vm(id=2, uuid="u2", name="b", node="n", template="t", vcpu=1, vram=1,
              hypervisor="fakevisor", dir=str(tmp_path))
    assert console(vm=mine, node=None) is None  # never started: no console yet
    (tmp_path / "console.log").write_text("")
    endpoint = console(vm=mine, node=None)
    assert (endpoint.socket, endpoint.log) == (os.path.join(tmp_path, "console.sock"),
                                               os.path.join(tmp_path, "console.log"))
