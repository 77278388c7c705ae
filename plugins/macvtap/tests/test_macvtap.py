"""The macvtap plugin against the real kernel, in a namespace of its own with a veth
upstream link: a macvtap with the VM's MAC, its character device handed over, and
nothing left after a detach."""

from __future__ import annotations

import json
import os
import sys

import pytest

from virshle_core.testing.netlab import Netns, tear_down

pytestmark = pytest.mark.e2e

PROGRAM = """
import json, os, sys
from virshle_core.config import parse_config
from virshle_core.hooks import config_sections
from virshle_core.errors import VirshleError
from virshle_core.models import Net, NodeContext, Vm
import virshle_macvtap

node = NodeContext(name="t", config=parse_config(sys.argv[1], path=None, sections=config_sections()),
                   id="11111111-1111-4111-8111-111111111111")
vm = Vm(id=9, uuid="5e1c3b2a-0000-4000-8000-000000000009", name="m", node="t", template="t",
        vcpu=1, vram=1, dir=sys.argv[3],
        nets=[Net(name="up", type=os.environ.get("NET_TYPE", "mac_v_tap"), mac="52:54:00:00:00:09", ifname="vm9n0",
                  options={"link": sys.argv[2]} if sys.argv[2] else {})])
results = {}
for step in sys.argv[4:]:
    try:
        if step == "attach":
            made = virshle_macvtap.virshle_net_attach(vm=vm, net=vm.nets[0], node=node)
            results[step] = {"ifname": made.ifname, "fds": len(made.fds),
                             "device": os.path.basename(os.readlink(f"/proc/self/fd/{made.fds[0]}"))}
        elif step == "detach":
            results[step] = virshle_macvtap.virshle_net_detach(vm=vm, net=vm.nets[0], node=node)
    except VirshleError as exc:
        results[step] = {"error": exc.code, "message": exc.message}
print(json.dumps(results))
"""


@pytest.fixture
def upstream(tmp_path):
    ns = Netns(f"vsh-mvt{os.getpid() % 100000}")
    try:
        ns.exec(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0peer"])
        ns.exec(["ip", "link", "set", "up0peer", "up"])
        ns.exec(["ip", "link", "set", "up0", "up"])
        ns.vm_dir = tmp_path
        yield ns
    finally:
        tear_down([ns])


def run_hooks(ns: Netns, link: str, *steps: str, config: str = "", net_type: str = "mac_v_tap") -> dict:
    result = ns.exec([sys.executable, "-c", PROGRAM, config, link, ns.vm_dir, *steps], check=False,
                     env={**os.environ, "NET_TYPE": net_type})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_a_macvtap_on_the_link_with_the_vms_mac(upstream):
    made = run_hooks(upstream, "up0", "attach")["attach"]
    assert made["ifname"] == "vm9n0" and made["fds"] == 1 and made["device"].startswith("tap")
    shown = upstream.exec(["ip", "-d", "-j", "link", "show", "vm9n0"])
    (link,) = json.loads(shown.stdout)
    assert link["address"] == "52:54:00:00:00:09"
    assert link["linkinfo"]["info_kind"] == "macvtap"
    assert link["linkinfo"]["info_data"]["mode"] == "bridge"
    assert run_hooks(upstream, "up0", "detach", "detach") == {"detach": True}
    assert upstream.exec(["ip", "link", "show", "vm9n0"], check=False).returncode != 0


def test_the_default_link_comes_from_the_config(upstream):
    made = run_hooks(upstream, "", "attach", "detach", config='[macvtap]\nlink = "up0"\n')
    assert made["attach"]["ifname"] == "vm9n0" and made["detach"] is True


def test_a_missing_link_is_a_clear_error_and_leaves_nothing(upstream):
    failed = run_hooks(upstream, "nope0", "attach")["attach"]
    assert failed["error"] == "macvtap_link_missing" and "nope0" in failed["message"]
    assert upstream.exec(["ip", "link", "show", "vm9n0"], check=False).returncode != 0


def test_upstreams_macvtap_spelling_is_the_same_net_type(upstream):
    """Upstream Virshle's configs write [template.vm.net.type.macvtap]: it attaches too."""
    made = run_hooks(upstream, "up0", "attach", "detach", net_type="macvtap")
    assert made["attach"]["ifname"] == "vm9n0" and made["detach"] is True
