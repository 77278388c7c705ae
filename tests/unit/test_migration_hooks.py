"""The hooks a move between nodes asks before any byte moves: which net types a node
attaches, and whether a hypervisor moves a running guest (issue 22)."""

from __future__ import annotations

from virshle_core.hooks import plugins
from virshle_core.models import Vm


def vm(hypervisor: str | None) -> Vm:
    return Vm(id=1, uuid="3f0c6a1e-0000-4000-8000-000000000001", name="web", node="n1",
              template="xs", vcpu=1, vram=1 << 30, hypervisor=hypervisor)


def test_hook_virshle_net_types():
    """Every plugin that attaches nets says its types, merged: a node without the ovs
    plugin has no "tap" to give a moving VM (tests/e2e/test_migrate.py refuses it)."""
    assert plugins().net_types(node=None) >= {"tap", "macvtap"}
    assert set(plugins().implementers("net_attach")) <= set(plugins().implementers("net_types"))


def test_hook_virshle_migration_support():
    """qemu moves a running guest; cloud-hypervisor says why it cannot (its
    vm.send-migration copies memory, not a node's local disks); an unknown hypervisor
    gets no answer, which the core reads as "cannot"."""
    assert plugins().migration_support(vm=vm("qemu"), node=None) == ""
    reason = plugins().migration_support(vm=vm("ch"), node=None)
    assert "cloud-hypervisor" in reason and "stop the VM" in reason
    assert plugins().migration_support(vm=vm("nothing-like-it"), node=None) is None
