"""Two roots on one host, one OVS bridge, one Kea (issue 19, item 1).

Seen before the node marks: with node one running a guest on its tap, ``node init --all``
for the second root deleted that tap (its mark named a VM the second store did not know),
and the guest was cut off while node one still said ``running``. Here each node runs a
real guest, and ``node init --all`` (served and not), a restart, and a ``kill -9`` with a
reconcile of either node must leave the other's guest answering pings through its tap.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import pytest

from virshle_core.testing.netlab import Netns, Ovs, bridge_with_dhcp, tear_down
from tests.support import Daemon, network_config, short_dir, wait_for, write_guest_config

pytestmark = [pytest.mark.e2e]
for tool in ("ovs-vsctl", "kea-dhcp4", "qemu-system-x86_64"):
    if not __import__("shutil").which(tool):
        pytestmark.append(pytest.mark.skip(reason=f"{tool} is not installed"))


@attrs.define
class Host:
    ns: Netns
    ovs: Ovs
    nodes: list[Daemon]
    guests: list[dict] = attrs.Factory(list)  # each node's running guest: its VM document


def template(guest: Path, directory: Path) -> str:
    return (f'\n[[template.vm]]\nname = "tapvm"\nvcpu = 1\nvram = "128MiB"\n'
            f'kernel = "{guest}/vmlinuz"\ninitramfs = "{guest}/initramfs.gz"\n'
            f'cmdline = "console=ttyS0 quiet panic=-1"\n'
            f'[[template.vm.net]]\nname = "main"\n[template.vm.net.type.tap]\n')


@pytest.fixture(scope="module")
def host(guest):
    ns = Netns(f"vsh-roots{os.getpid() % 100000}")
    started: list = []
    nodes: list[Daemon] = []
    try:
        base = short_dir("roots")
        ovs, kea = bridge_with_dhcp(ns, base, "10.55.0.1/24", "10.55.0.100 - 10.55.0.199", started)
        for index in (1, 2):
            directory = short_dir(f"root{index}")
            # grace 0: without it, a port younger than a minute is never reaped, by anyone
            extra = network_config(ovs, kea).replace('bridge = "br0"', 'bridge = "br0"\ngrace = 0')
            config = write_guest_config(directory, guest, "qemu", extra=extra + template(guest, directory))
            node = Daemon(directory, config, netns=ns.name, init_parts=("--all",), reaped=True)
            node.start()
            nodes.append(node)
        found = Host(ns, ovs, nodes)
        # node two's guest is its second VM: before tagged names, both would be vm1n0, and
        # the second could not even start (tests/unit/test_store.py shows the names apart)
        assert nodes[1].cli("vm", "create", "-t", "tapvm", "--name", "spacer").returncode == 0
        for index, node in enumerate(nodes, 1):
            made = node.cli("vm", "create", "-t", "tapvm", "--name", f"guest{index}", "--json")
            assert made.returncode == 0, made.stderr
            started_vm = node.cli("vm", "start", "--name", f"guest{index}")
            assert started_vm.returncode == 0, started_vm.stderr + node.log()[-2000:]
        for index, node in enumerate(nodes, 1):
            found.guests.append(wait_for(lambda: _with_ip(node, f"guest{index}"), timeout=120,
                                         what=f"a lease for guest{index}"))
        yield found
    finally:
        for node in nodes:
            node.close()
        tear_down(started)
        ns.delete()


def _with_ip(node: Daemon, name: str) -> dict | None:
    vm = node.cli("vm", "info", "--name", name, "--json").json()
    return vm if vm["ips"] else None


def links(ns: Netns) -> dict[str, dict]:
    return {link["ifname"]: link for link in json.loads(ns.exec(["ip", "-j", "-d", "link"]).stdout)}


def assert_guest_intact(host: Host, index: int, after: str) -> None:
    """Node ``index``'s guest still has its marked tap on the bridge and answers pings."""
    node, vm = host.nodes[index], host.guests[index]
    tap = vm["nets"][0]["ifname"]
    present = links(host.ns)
    assert tap in present, f"after {after}: node {index + 1}'s tap {tap} is gone"
    identity = (node.root / "node-id").read_text().strip()
    assert present[tap].get("ifalias") == f"virshle:{identity}:{vm['uuid']}:main", after
    assert tap in host.ovs.ports("br0"), f"after {after}: node {index + 1}'s port {tap} is gone"
    ping = host.ns.exec(["ping", "-c", "1", "-W", "5", vm["ips"][0]], check=False)
    assert ping.returncode == 0, f"after {after}: node {index + 1}'s guest is unreachable"
    assert node.cli("vm", "info", "--name", vm["name"], "--json").json()["state"] == "running"


def test_both_guests_answer(host):
    for index in (0, 1):
        assert_guest_intact(host, index, "start")


@pytest.mark.parametrize("actor", [1, 0], ids=["node2-acts", "node1-acts"])
def test_node_init_restart_and_crash_of_one_root_leave_the_other_alone(host, actor):
    other = 1 - actor
    node = host.nodes[actor]
    # node init --all through the serving daemon
    result = node.node_cli("node", "init", "--all")
    assert result.returncode == 0, result.stderr
    assert_guest_intact(host, other, "node init --all (served)")
    # node init --all in the CLI's own process (no daemon serves this root)
    node.stop()
    result = node.node_cli("node", "init", "--all")
    assert result.returncode == 0, result.stderr
    assert_guest_intact(host, other, "node init --all (no daemon)")
    # a restart: the daemon re-adopts its own guest, and leaves the other's
    node.start()
    assert_guest_intact(host, other, "a restart")
    assert_guest_intact(host, actor, "its own restart")
    # a crash, then a start that reconciles, then node init
    node.kill9()
    node.start()
    assert node.node_cli("node", "init", "--net").returncode == 0
    assert_guest_intact(host, other, "kill -9 and reconcile")
    assert_guest_intact(host, actor, "its own kill -9 and reconcile")


def test_gc_leaves_every_marked_device(host):
    for node in host.nodes:
        dry = node.node_cli("node", "gc", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert dry.json()["removed"] == []
    for index in (0, 1):
        assert_guest_intact(host, index, "node gc --dry-run")
