"""The ovs plugin against a real Open vSwitch (userspace datapath, in a namespace of its own).

Each test runs the plugin's hooks in a Python process inside the namespace, as the
daemon would run them, and reads the result back from OVSDB and the kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from virshle_core.testing.netlab import Netns, Ovs, tear_down

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not shutil.which("ovs-vsctl"),
                                                  reason="Open vSwitch is not installed")]

PROGRAM = """
import json, os, sys
from virshle_core.config import parse_config
from virshle_core.hooks import config_sections
from virshle_core.models import Net, NodeContext, Vm
import virshle_ovs

config = parse_config(sys.argv[1], path=None, sections=config_sections())
node = NodeContext(name="t", config=config, id=os.environ.get("NODE_ID", "11111111-1111-4111-8111-111111111111"))
vm = Vm(id=7, uuid="0b9d1f0e-0000-4000-8000-000000000007", name="a", node="t", template="t",
        vcpu=1, vram=1, dir=sys.argv[2],
        nets=[Net(name="main", type="tap", mac="52:54:00:00:00:07", ifname="vm7n0")])
results = {}
for step in sys.argv[3:]:
    if step == "attach":
        made = virshle_ovs.virshle_net_attach(vm=vm, net=vm.nets[0], node=node)
        results[step] = {"ifname": made.ifname, "offload": made.offload, "type": made.type}
    elif step == "detach":
        results[step] = virshle_ovs.virshle_net_detach(vm=vm, net=vm.nets[0], node=node)
    elif step == "other":
        results[step] = virshle_ovs.virshle_net_attach(vm=vm, net=Net(name="x", type="mac_v_tap"), node=node)
    elif step == "init":
        virshle_ovs.virshle_node_init(node=node, parts=frozenset({"net"}))
        results[step] = True
    elif step in ("gc", "gc-dry-run"):
        results[step] = virshle_ovs.virshle_node_gc(node=node, dry_run=step == "gc-dry-run")
print(json.dumps(results))
"""


@pytest.fixture
def switch(tmp_path):
    ns = Netns(f"vsh-ovs{os.getpid() % 100000}")
    parts: list = [ns]
    try:
        ovs = Ovs(ns, tmp_path / "ovs")
        parts.append(ovs)
        ovs.add_bridge("br0")
        (tmp_path / "vm").mkdir()
        yield ns, ovs, tmp_path / "vm"
    finally:
        tear_down(parts)


OTHER_NODE = "22222222-2222-4222-8222-222222222222"


def run_hooks(switch, *steps: str, grace: float = 60.0, node_id: str | None = None) -> dict:
    ns, ovs, vm_dir = switch
    config = f'[ovs]\nbridge = "br0"\ndb = "{ovs.url}"\ngrace = {grace}\n'
    env = {**os.environ, **({"NODE_ID": node_id} if node_id else {})}
    result = ns.exec([sys.executable, "-c", PROGRAM, config, vm_dir, *steps], check=False, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def link_exists(ns: Netns, name: str) -> bool:
    return ns.exec(["ip", "link", "show", name], check=False).returncode == 0


def test_a_tap_joins_the_bridge_and_goes_again(switch):
    ns, ovs, _ = switch
    made = run_hooks(switch, "attach")["attach"]
    assert made == {"ifname": "vm7n0", "offload": False, "type": "tap"}  # userspace datapath
    assert ovs.ports("br0") == ["vm7n0"]
    assert link_exists(ns, "vm7n0")
    owner = ovs.vsctl("get", "interface", "vm7n0", "external_ids:virshle-vm")
    assert owner.strip('"') == "0b9d1f0e-0000-4000-8000-000000000007"

    assert run_hooks(switch, "detach", "detach") == {"detach": True}  # twice: gone is fine
    assert ovs.ports("br0") == []
    assert not link_exists(ns, "vm7n0")


def test_another_net_type_is_not_its_own(switch):
    ns, ovs, _ = switch
    assert run_hooks(switch, "other") == {"other": None}
    assert ovs.ports("br0") == []


def test_node_init_reaps_only_its_own_orphans(switch):
    ns, ovs, _ = switch
    run_hooks(switch, "attach")
    ns.exec(["ip", "tuntap", "add", "dev", "theirs0", "mode", "tap"])
    ovs.vsctl("add-port", "br0", "theirs0")  # someone else's port: no Virshle mark
    run_hooks(switch, "init", grace=60.0)
    assert sorted(ovs.ports("br0")) == ["theirs0", "vm7n0"]  # too young to be an orphan
    run_hooks(switch, "init", grace=0.0)  # no VM of that uuid in the (absent) store
    assert ovs.ports("br0") == ["theirs0"]
    assert not link_exists(ns, "vm7n0") and link_exists(ns, "theirs0")


def test_another_nodes_tap_and_port_are_never_reaped(switch):
    """Two roots on one host share the bridge: one's node init must not take the other's
    devices (it did: their marks named a VM that only the other's store knows)."""
    ns, ovs, _ = switch
    run_hooks(switch, "attach", node_id=OTHER_NODE)
    alias = ns.exec(["cat", "/sys/class/net/vm7n0/ifalias"]).stdout.strip()
    assert alias == f"virshle:{OTHER_NODE}:0b9d1f0e-0000-4000-8000-000000000007:main"
    assert ovs.vsctl("get", "interface", "vm7n0", "external_ids:virshle-node").strip('"') == OTHER_NODE
    run_hooks(switch, "init", grace=0.0)  # this node: the VM is unknown to it, and not its own
    assert ovs.ports("br0") == ["vm7n0"] and link_exists(ns, "vm7n0")
    assert run_hooks(switch, "gc-dry-run", "gc") == {"gc-dry-run": [], "gc": []}
    assert ovs.ports("br0") == ["vm7n0"] and link_exists(ns, "vm7n0")
    # nor does this node's detach of a VM of the same shape take them
    assert run_hooks(switch, "detach") == {"detach": True}
    assert ovs.ports("br0") == ["vm7n0"] and link_exists(ns, "vm7n0")


def test_strays_are_reported_and_only_gc_removes_them(switch):
    ns, ovs, _ = switch
    # what a Virshle older than the node marks left: a tap with the old mark, its port
    ns.exec(["ip", "tuntap", "add", "dev", "vm3n0", "mode", "tap"])
    ns.exec(["ip", "link", "set", "vm3n0", "alias", "virshle:0b9d1f0e-0000-4000-8000-000000000003:main"])
    ovs.vsctl("add-port", "br0", "vm3n0", "--", "set", "interface", "vm3n0",
              "external_ids:virshle-vm=0b9d1f0e-0000-4000-8000-000000000003",
              "external_ids:virshle-created=0")
    ns.exec(["ip", "tuntap", "add", "dev", "vabc4n0", "mode", "tap"])  # named like ours, no mark
    run_hooks(switch, "init", grace=0.0)
    assert ovs.ports("br0") == ["vm3n0"] and link_exists(ns, "vm3n0") and link_exists(ns, "vabc4n0")
    dry = run_hooks(switch, "gc-dry-run")["gc-dry-run"]
    assert sorted(dry) == ["OVS port vm3n0 (names a VM, but no node)", "tap vabc4n0 (no node's mark)",
                           "tap vm3n0 (no node's mark)"]
    assert ovs.ports("br0") == ["vm3n0"] and link_exists(ns, "vabc4n0")
    assert sorted(run_hooks(switch, "gc")["gc"]) == sorted(dry)
    assert ovs.ports("br0") == [] and not link_exists(ns, "vm3n0") and not link_exists(ns, "vabc4n0")
