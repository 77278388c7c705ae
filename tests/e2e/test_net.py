"""Networking end to end: real OVS (userspace datapath), real Kea, real QEMU, real SSH.

A node lives in its own network namespace with OVS and kea-dhcp4 on br0; an
"upstream router" namespace, joined by a veth, runs its own Kea for the
macvtap VMs. Everything is created here and removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest

from virshle_core.marks import node_tag
from virshle_core.testing.netlab import Kea, Netns, Ovs, bridge_with_dhcp, tear_down, veth
from tests.support import VIRSHLE, Daemon, short_dir, wait_for, write_guest_config

pytestmark = [pytest.mark.e2e]

for tool in ("ovs-vsctl", "kea-dhcp4", "qemu-system-x86_64", "ssh"):
    if not __import__("shutil").which(tool):
        pytestmark.append(pytest.mark.skip(reason=f"{tool} is not installed"))


@attrs.define
class Lab:
    node_ns: Netns
    router_ns: Netns
    ovs: Ovs
    kea: Kea
    kea6: Kea
    upstream_kea: Kea
    daemon: Daemon
    guest: Path


def templates(guest: Path) -> str:
    def template(name: str, net: str) -> str:
        return (f'\n[[template.vm]]\nname = "{name}"\nvcpu = 1\nvram = "256MiB"\n'
                f'kernel = "{guest}/vmlinuz"\ninitramfs = "{guest}/initramfs.gz"\n'
                f'cmdline = "console=ttyS0 quiet panic=-1"\n'
                f'[[template.vm.net]]\nname = "main"\n{net}\n')

    return (template("tapvm", "[template.vm.net.type.tap]")
            + template("mvt", '[template.vm.net.type.mac_v_tap]\nlink = "up0"')
            + template("warp", "[template.vm.net.type.warp]")
            + template("nolink", '[template.vm.net.type.mac_v_tap]\nlink = "nope0"'))


@pytest.fixture(scope="module")
def lab(guest):
    tag = f"{os.getpid() % 100000}"
    node_ns, router_ns = Netns(f"vsh-node{tag}"), Netns(f"vsh-up{tag}")
    started = []
    try:
        base = short_dir("lab")
        ovs, kea = bridge_with_dhcp(node_ns, base, "10.77.0.1/24", "10.77.0.100 - 10.77.0.199",
                                    started)
        node_ns.exec(["ip", "-6", "addr", "add", "fd77::1/64", "dev", "br0", "nodad"])
        kea6 = Kea(node_ns, base / "kea6", "br0", "fd77::/64", "fd77::100 - fd77::1ff", version=6)
        started.append(kea6)
        veth(node_ns, "up0", router_ns, "up1")
        router_ns.exec(["ip", "addr", "add", "10.88.0.1/24", "dev", "up1"])
        upstream = Kea(router_ns, base / "kea-up", "up1", "10.88.0.0/24",
                       "10.88.0.100 - 10.88.0.199", "10.88.0.1")
        started.append(upstream)
        directory = short_dir("node")
        config = write_guest_config(directory, guest, "qemu", extra=(
            f'\n[ovs]\nbridge = "br0"\ndb = "{ovs.url}"\n[dhcp.kea]\nurl = "{kea.url}"\n'
            f'url6 = "{kea6.url}"\n' + templates(guest)))
        daemon = Daemon(directory, config, netns=node_ns.name, init_parts=("--all",))
        daemon.start()
        started.append(daemon)
        yield Lab(node_ns, router_ns, ovs, kea, kea6, upstream, daemon, guest)
    finally:
        tear_down(started)
        node_ns.delete()
        router_ns.delete()


def links(ns: Netns) -> set[str]:
    out = ns.exec(["ip", "-j", "link", "show"]).stdout
    return {link["ifname"] for link in json.loads(out)}


def vm_json(lab: Lab, name: str, *flags: str) -> dict:
    result = lab.daemon.cli("vm", "info", "--name", name, "--json", *flags)
    assert result.returncode == 0, result.stderr
    return result.json()


def test_tap_vm_gets_a_lease_answers_ping_and_ssh(lab):
    node = lab.daemon
    events = subprocess.Popen([VIRSHLE, "events", "--json"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "VIRSHLE_CONFIG": str(node.config)})
    seen: list[dict] = []
    threading.Thread(target=lambda: [seen.append(json.loads(l)) for l in events.stdout],
                     daemon=True).start()
    try:
        assert node.cli("vm", "create", "-t", "tapvm", "--name", "web").returncode == 0
        started = node.cli("vm", "start", "--name", "web")
        assert started.returncode == 0, started.stderr + node.log()[-3000:]
        vm = vm_json(lab, "web")
        (net,) = vm["nets"]
        tag = node_tag((node.root / "node-id").read_text().strip())
        assert net["mac"].startswith("02:76:73:") and net["ifname"] == f"v{tag}{vm['id']}n0"
        assert net["ifname"] in lab.ovs.ports("br0")
        log = node.log()  # -vvvv: every host network change as the command line it is
        assert f"$ ip tuntap add dev {net['ifname']} mode tap vnet_hdr" in log
        assert f"add-port br0 {net['ifname']}" in log and "$ ovs-vsctl --db=" in log
        assert "$ /usr/bin/qemu-system-x86_64 -name web" in log or "qemu-system-x86_64 -name web" in log
        ids = lab.ovs.vsctl("get", "interface", net["ifname"], "external_ids")
        assert f'virshle-vm="{vm["uuid"]}"' in ids and 'virshle-net=main' in ids

        # the lease shows in vm ls -v --json (one Kea query per listing)
        listed = wait_for(lambda: [v for v in node.cli("vm", "ls", "-v", "--json").json()
                                   if v["name"] == "web" and v["ips"]],
                          timeout=120, what="a lease for the tap VM")
        (ip,) = listed[0]["ips"]
        assert ip.startswith("10.77.0.")
        table = node.cli("vm", "ls", "-v").stdout
        assert ip in table
        wait_for(lambda: any(e["event"] == "lease-acquired" and e.get("ip") == ip for e in seen),
                 timeout=15, what="the lease-acquired event")
        assert any(e["event"] == "net-attached" for e in seen)

        # ping, then `ssh <vm_ip>` from the node, as the seed says
        lab.node_ns.exec(["ping", "-c", "2", "-W", "5", ip])
        known_hosts = node.directory / "known_hosts"
        known_hosts.write_text(f"{ip} {(lab.guest / 'host_key.pub').read_text()}")
        ssh = lab.node_ns.exec(
            ["ssh", "-i", lab.guest / "id_ed25519", "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
             "-o", "ConnectTimeout=20", f"root@{ip}", "echo ran-in-$(hostname)"], check=False,
            timeout=90)
        assert ssh.returncode == 0, ssh.stderr
        assert ssh.stdout.strip() == "ran-in-virshle-guest"

        # stop: tap and port gone; rm: lease gone
        assert node.cli("vm", "stop", "--name", "web", "--force").returncode == 0
        assert net["ifname"] not in lab.ovs.ports("br0")
        assert net["ifname"] not in links(lab.node_ns)
        assert any(e["event"] == "net-detached" for e in seen)
        assert net["mac"] in {l["hw-address"] for l in lab.kea.leases()}
        assert node.cli("vm", "rm", "--name", "web").returncode == 0
        assert net["mac"] not in {l["hw-address"] for l in lab.kea.leases()}
    finally:
        events.terminate()
        events.wait(10)


def test_macvtap_vm_gets_its_lease_from_the_upstream_router(lab):
    node = lab.daemon
    assert node.cli("vm", "create", "-t", "mvt", "--name", "edge").returncode == 0
    started = node.cli("vm", "start", "--name", "edge")
    assert started.returncode == 0, started.stderr + node.log()[-3000:]
    (net,) = vm_json(lab, "edge")["nets"]
    detail = lab.node_ns.exec(["ip", "-d", "-j", "link", "show", net["ifname"]]).stdout
    (link,) = json.loads(detail)
    assert link["linkinfo"]["info_kind"] == "macvtap" and link["address"] == net["mac"]
    assert link["linkinfo"]["info_data"]["mode"] == "bridge"
    lease = wait_for(lambda: [l for l in lab.upstream_kea.leases() if l["hw-address"] == net["mac"]],
                     timeout=120, what="a lease from the upstream Kea")
    assert lease[0]["ip-address"].startswith("10.88.0.")
    wait_for(lambda: f"lease {lease[0]['ip-address']}" in node.cli("vm", "logs", "--name", "edge").stdout,
             timeout=30, what="the guest saying it got the lease")
    assert node.cli("vm", "stop", "--name", "edge", "--force").returncode == 0
    assert net["ifname"] not in links(lab.node_ns)
    assert node.cli("vm", "rm", "--name", "edge").returncode == 0


def test_sixteen_concurrent_starts_and_stops(lab):
    node = lab.daemon
    created = node.cli("vm", "create", "-t", "tapvm", "-n", "16", "--name", "burst", "--json")
    assert created.returncode == 0, created.stderr
    vms = created.json()
    with ThreadPoolExecutor(16) as pool:
        starts = list(pool.map(lambda vm: node.cli("vm", "start", "--uuid", vm["uuid"]), vms))
    assert all(r.returncode == 0 for r in starts), [r.stderr for r in starts if r.returncode]
    nets = [vm_json(lab, vm["name"])["nets"][0] for vm in vms]
    assert len({n["mac"] for n in nets}) == 16 and len({n["ifname"] for n in nets}) == 16
    ports = set(lab.ovs.ports("br0"))
    assert {n["ifname"] for n in nets} <= ports
    with ThreadPoolExecutor(16) as pool:
        stops = list(pool.map(lambda vm: node.cli("vm", "rm", "--force", "--uuid", vm["uuid"]), vms))
    assert all(r.returncode == 0 for r in stops), [r.stderr for r in stops if r.returncode]
    assert not {n["ifname"] for n in nets} & set(lab.ovs.ports("br0"))
    assert not {n["ifname"] for n in nets} & links(lab.node_ns)
    assert list((node.root / "vm").iterdir()) == []


def test_unknown_net_type_and_missing_macvtap_link(lab):
    node = lab.daemon
    for template, message in (
        ("warp", "no plugin handles net type 'warp' (net 'main')"),
        ("nolink", "the macvtap link 'nope0' of net 'main' does not exist"),
    ):
        assert node.cli("vm", "create", "-t", template, "--name", template).returncode == 0
        before = links(lab.node_ns)
        result = node.cli("vm", "start", "--name", template)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert links(lab.node_ns) == before
        assert not list((node.root / "vm").glob("*/vmm.pid"))
        assert node.cli("vm", "rm", "--name", template).returncode == 0
    warp = node.cli("vm", "create", "-t", "warp", "--name", "warp2")
    assert warp.returncode == 0
    hint = node.cli("vm", "start", "--name", "warp2").stderr
    assert "Plugins that attach nets: macvtap, ovs" in hint
    node.cli("vm", "rm", "--name", "warp2")


def test_a_tap_name_taken_by_someone_else_is_left_alone(lab):
    node = lab.daemon
    vm = node.cli("vm", "create", "-t", "tapvm", "--name", "squat", "--json").json()[0]
    ifname = vm["nets"][0]["ifname"]
    lab.node_ns.exec(["ip", "tuntap", "add", "dev", ifname, "mode", "tap"])
    try:
        result = node.cli("vm", "start", "--name", "squat")
        assert result.returncode == 2
        assert f"the interface {ifname} exists and is not this node's" in result.stderr
        assert ifname in links(lab.node_ns)  # not ours: untouched
        assert ifname not in lab.ovs.ports("br0")
    finally:
        lab.node_ns.exec(["ip", "link", "del", ifname], check=False)
    assert node.cli("vm", "rm", "--name", "squat").returncode == 0


@pytest.mark.parametrize("ovs_table,message", [
    ('[ovs]\nbridge = "br0"\ndb = "unix:/nonexistent/db.sock"',
     "Open vSwitch is not running: no database answers at unix:/nonexistent/db.sock"),
    ('[ovs]\nbridge = "brmissing"\ndb = "{db}"', "the bridge brmissing does not exist"),
])
def test_ovs_faults_leave_nothing(lab, ovs_table, message):
    directory = short_dir("fault")
    config = write_guest_config(directory, lab.guest, "qemu", extra="\n" + ovs_table.format(
        db=lab.ovs.url) + "\n" + templates(lab.guest))
    daemon = Daemon(directory, config, netns=lab.node_ns.name)
    daemon.start()
    try:
        vm = daemon.cli("vm", "create", "-t", "tapvm", "--name", "f", "--json").json()[0]
        before = links(lab.node_ns)
        result = daemon.cli("vm", "start", "--name", "f")
        assert result.returncode == 1
        assert message in result.stderr and "Traceback" not in result.stderr
        if "brmissing" in message:
            assert "virshle node init --net" in result.stderr
        assert links(lab.node_ns) == before
        assert vm["nets"][0]["ifname"] not in lab.ovs.ports("br0")
        assert daemon.cli("vm", "info", "--name", "f", "--json").json()["state"] == "created"
        assert daemon.cli("vm", "rm", "--name", "f").returncode == 0
    finally:
        daemon.stop()
        daemon.kill_vmms()


def test_listing_survives_kea_being_down(lab):
    node = lab.daemon
    assert node.cli("vm", "create", "-t", "tapvm", "--name", "nokea").returncode == 0
    lab.kea.stop()
    try:
        result = node.cli("vm", "ls", "-v")
        assert result.returncode == 0
        assert "nokea" in result.stdout
        assert f"Kea at {lab.kea.url} is unreachable" in result.stderr
        assert node.cli("vm", "ls", "--json").returncode == 0
        quiet = node.cli("vm", "ls")
        assert quiet.returncode == 0 and "unreachable" not in quiet.stderr
    finally:
        lab.kea.start()
        node.cli("vm", "rm", "--name", "nokea")


def test_node_init_net_reaps_only_our_orphans(lab):
    node = lab.daemon
    ghost = "0f0f0f0f-0000-4000-8000-00000000dead"
    ours = (node.root / "node-id").read_text().strip()
    ns = lab.node_ns
    # an orphan tap and port of a VM the database does not know, marked as this node's
    ns.exec(["ip", "tuntap", "add", "dev", "vm999n0", "mode", "tap"])
    ns.exec(["ip", "link", "set", "vm999n0", "alias", f"virshle:{ours}:{ghost}:main"])
    lab.ovs.vsctl("add-port", "br0", "vm999n0", "--", "set", "interface", "vm999n0",
                  f"external_ids:virshle-node={ours}", f"external_ids:virshle-vm={ghost}",
                  "external_ids:virshle-created=0")
    # one marked as a VM's without a node (a Virshle older than node marks): a stray
    ns.exec(["ip", "tuntap", "add", "dev", "vm998n0", "mode", "tap"])
    ns.exec(["ip", "link", "set", "vm998n0", "alias", f"virshle:{ghost}:main"])
    # an interface of someone else's, unmarked
    ns.exec(["ip", "tuntap", "add", "dev", "theirs0", "mode", "tap"])
    # a lease of a VM this node removed (Kea was down then), and one of another node's VM
    gone = node.cli("vm", "create", "-t", "tapvm", "--name", "gone", "--json").json()[0]
    released = gone["nets"][0]["mac"]
    assert node.cli("vm", "rm", "--name", "gone").returncode == 0
    lab.kea.command("lease4-add", {"ip-address": "10.77.0.189", "hw-address": released,
                                   "subnet-id": 1})
    lab.kea.command("lease4-add", {"ip-address": "10.77.0.190", "hw-address": "02:76:73:de:ad:00",
                                   "subnet-id": 1})
    lab.kea.command("lease4-add", {"ip-address": "10.77.0.191", "hw-address": "52:54:00:de:ad:01",
                                   "subnet-id": 1})
    try:
        result = node.node_cli("node", "init", "--net", "-vv")
        assert result.returncode == 0, result.stderr
        assert "vm999n0" not in links(ns) and "vm999n0" not in lab.ovs.ports("br0")
        assert "theirs0" in links(ns) and "vm998n0" in links(ns)
        assert "vm998n0" in result.stderr and "node gc" in result.stderr  # reported, not taken
        macs = {l["hw-address"] for l in lab.kea.leases()}
        assert released not in macs               # this node's, of a VM it removed: gone
        assert "02:76:73:de:ad:00" in macs        # Virshle's prefix, but not this node's: kept
        assert "52:54:00:de:ad:01" in macs        # not Virshle's: kept
        dry = node.node_cli("node", "gc", "--dry-run")
        assert dry.returncode == 0 and "would remove tap vm998n0" in dry.stdout, dry.stdout + dry.stderr
        assert "vm998n0" in links(ns)
        gc = node.node_cli("node", "gc", "--json")
        assert gc.returncode == 0 and "tap vm998n0 (no node's mark)" in gc.json()["removed"]
        assert "vm998n0" not in links(ns) and "theirs0" in links(ns)
    finally:
        for name in ("theirs0", "vm999n0", "vm998n0"):
            ns.exec(["ip", "link", "del", name], check=False)
        for ip in ("10.77.0.190", "10.77.0.191"):
            lab.kea.command("lease4-del", {"ip-address": ip})


def test_ipv6_leases_from_kea_dhcp6(lab):
    node = lab.daemon
    vm = node.cli("vm", "create", "-t", "tapvm", "--name", "six", "--json").json()[0]
    mac = vm["nets"][0]["mac"]
    added = lab.kea6.command("lease6-add", {"ip-address": "fd77::150", "duid": "01:02:03:04:05:06",
                                            "iaid": 1, "hw-address": mac, "subnet-id": 1})
    assert added["result"] == 0, added
    info = node.cli("vm", "info", "--name", "six", "--json").json()
    assert "fd77::150" in info["ips"]
    assert node.cli("vm", "rm", "--name", "six").returncode == 0
    assert "fd77::150" not in {l["ip-address"] for l in lab.kea6.leases()}


def test_launch_waits_for_the_lease_then_logs_in(lab, tmp_path):
    """`vm launch --wait-ip --ssh` (issue 23, item 4): created, started, its lease printed,
    then `vm ssh` into it. The command runs in the node's namespace, where the guest's
    address is reachable; `ssh` on its PATH only adds `-F` (this test's key and known
    hosts) before the real one, and the shell it opens reads its commands from stdin."""
    node = lab.daemon
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  IdentityFile {lab.guest / 'id_ed25519'}\n"
                      "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
                      "  BatchMode yes\n  LogLevel ERROR\n")
    wrapper = tmp_path / "bin" / "ssh"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {config} "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "VIRSHLE_CONFIG": str(node.config),
           "PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
    launched = lab.node_ns.exec(
        [VIRSHLE, "vm", "launch", "-t", "tapvm", "--name", "quick", "--wait-ip", "--ssh"],
        check=False, env=env, input="echo ran-in-$(hostname)\nexit\n", timeout=240)
    assert launched.returncode == 0, launched.stderr
    assert "Created VM quick" in launched.stdout and "Started VM quick" in launched.stdout
    address = vm_json(lab, "quick")["ips"][0]
    assert f"VM quick: {address}" in launched.stdout
    assert "ran-in-virshle-guest" in launched.stdout
    assert node.cli("vm", "rm", "--name", "quick", "--force").returncode == 0
