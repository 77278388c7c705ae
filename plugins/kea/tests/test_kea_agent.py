"""The seed's `[dhcp.kea] url = "tcp://localhost:5547"` form: the kea plugin asks a real
kea-ctrl-agent, which forwards to a real kea-dhcp4 with lease_cmds, in a namespace of the
test's own (the agent listens on that namespace's loopback)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from virshle_core.testing.netlab import Kea, KeaAgent, Netns, tear_down

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (shutil.which("kea-ctrl-agent") and shutil.which("kea-dhcp4")),
                                 reason="Kea's dhcp4 server or control agent is not installed")]

PROGRAM = """
import json, sys
from virshle_core.config import parse_config
from virshle_core.models import Net, NodeContext, Vm
from virshle_core.hooks import config_sections
import virshle_kea

node = NodeContext(name="t", config=parse_config(sys.argv[1], path=None, sections=config_sections()))
vm = Vm(id=3, uuid="u3", name="leased", node="t", template="t", vcpu=1, vram=1, dir="/nonexistent",
        nets=[Net(name="main", type="tap", mac="52:54:00:12:34:56")])
leases = virshle_kea.virshle_lease_query(vms=[vm], node=node) or []
print(json.dumps([[lease.mac, lease.ip] for lease in leases]))
"""


@pytest.fixture
def agent(tmp_path):
    ns = Netns(f"vsh-kca{os.getpid() % 100000}")
    parts: list = [ns]
    try:
        ns.exec(["ip", "link", "add", "k0", "type", "veth", "peer", "name", "k1"])
        ns.exec(["ip", "addr", "add", "10.77.0.1/24", "dev", "k0"])
        for link in ("k0", "k1"):
            ns.exec(["ip", "link", "set", link, "up"])
        kea = Kea(ns, tmp_path / "kea", "k0", "10.77.0.0/24", "10.77.0.100-10.77.0.150",
                  router="10.77.0.1")
        parts.append(kea)
        agent = KeaAgent(kea, port=5547)
        parts.append(agent)
        yield ns, kea, agent
    finally:
        tear_down(parts)


def test_leases_through_the_control_agent(agent):
    ns, kea, agent = agent
    added = kea.command("lease4-add", {"ip-address": "10.77.0.120", "hw-address": "52:54:00:12:34:56"})
    assert added["result"] == 0, added
    config = f'[dhcp.kea]\nurl = "{agent.url}"\n'
    assert agent.url == "tcp://127.0.0.1:5547"
    result = ns.exec([sys.executable, "-c", PROGRAM, config], check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [["52:54:00:12:34:56", "10.77.0.120"]]
