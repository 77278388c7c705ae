"""The verbs on VMs that exist (issue 13), on real QEMU guests: pause, resume, reboot,
snapshots (the guest writes its own disk with dd), resize, clone and ``vm ssh`` through
a real OVS bridge, Kea lease and sshd; and the bulk forms of the verbs.

The node lives in a network namespace with OVS and Kea, as in test_net.py; its guests
are shared between the tests, which run in order (TCG boots are the cost).
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

from tests.support import (Daemon, follow_events, one_line_error, short_dir, snapshot, wait_for,
                           write_guest_config)
from virshle_core.testing.netlab import Netns, Ovs, bridge_with_dhcp, tear_down

pytestmark = [pytest.mark.e2e]

for tool in ("ovs-vsctl", "kea-dhcp4", "qemu-system-x86_64", "ssh", "qemu-img"):
    if not __import__("shutil").which(tool):
        pytestmark.append(pytest.mark.skip(reason=f"{tool} is not installed"))


SHELL = "built-in shell (ash)"  # the test guest's console, once its power button listens


@attrs.define
class Lab:
    ns: Netns
    ovs: Ovs
    daemon: Daemon
    guest: Path

    def cli(self, *args: str, **kwargs):
        return self.daemon.cli(*args, **kwargs)

    def vm(self, name: str) -> dict:
        result = self.cli("vm", "info", "--name", name, "--json")
        assert result.returncode == 0, result.stderr
        return result.json()

    def console(self, name: str) -> str:
        return self.cli("vm", "logs", "--name", name).stdout

    def boots(self, name: str) -> int:
        """How many times the guest came up far enough to hear its power button: its shell
        starts after the button's listener (scripts/build-guest.sh)."""
        return self.console(name).count(SHELL)

    def ssh_args(self) -> list[str]:
        return ["--user", "root", "-i", str(self.guest / "id_ed25519"),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]

    def ssh(self, name: str, command: str, timeout: float = 60):
        """``vm ssh`` from inside the node's namespace: the guest's address is on its bridge
        (the tests send nothing beyond the namespaces they made)."""
        return self.daemon.node_cli("vm", "ssh", name, *self.ssh_args(), "--", command,
                                    timeout=timeout)

    def ssh_ready(self, name: str) -> None:
        wait_for(lambda: self.vm_ips(name), timeout=120, what=f"a lease for {name}")
        tries = []

        def logged_in() -> bool:
            tries.append(self.ssh(name, "true", timeout=30))
            return tries[-1].returncode == 0

        try:
            wait_for(logged_in, timeout=120, every=2, what=f"ssh into {name}")
        except AssertionError:
            dry = self.cli("vm", "ssh", name, *self.ssh_args(), "--dry-run", "--", "true")
            raise AssertionError(f"no ssh into {name}: {tries[-1].stderr}; {dry.stdout}"
                                 f"{self.console(name)[-1500:]}") from None

    def vm_ips(self, name: str) -> list[str]:
        return self.vm(name)["ips"]

    def first_sector(self, name: str) -> str:
        read = self.ssh(name, "dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 32")
        assert read.returncode == 0, read.stderr
        return read.stdout.strip("\0\n ")

    def write_sector(self, name: str, text: str) -> None:
        wrote = self.ssh(name, f"printf '%-32s' {text} | dd of=/dev/vda bs=512 count=1 conv=sync,fsync "
                               "2>/dev/null")
        assert wrote.returncode == 0, wrote.stderr


@pytest.fixture(scope="module")
def lab(guest):
    tag = f"{os.getpid() % 100000}"
    ns = Netns(f"vsh-verb{tag}")
    started: list = []
    try:
        base = short_dir("verb")
        ovs, kea = bridge_with_dhcp(ns, base, "10.66.0.1/24", "10.66.0.100 - 10.66.0.199", started)
        directory = short_dir("verbn")
        config = write_guest_config(directory, guest, "qemu", limits=False, extra=(
            f'\n[[template.vm.net]]\nname = "main"\n[template.vm.net.type.tap]\n'
            f'\n[host.limits]\ncpu = 300\nram = 200\n'
            f'\n[ovs]\nbridge = "br0"\ndb = "{ovs.url}"\n[dhcp.kea]\nurl = "{kea.url}"\n'))
        daemon = Daemon(directory, config, netns=ns.name, init_parts=("--all",))
        daemon.start()
        started.append(daemon)
        lab = Lab(ns, ovs, daemon, guest)
        for name in ("verb-a", "verb-b"):
            assert lab.cli("vm", "create", "-t", "tiny", "--name", name).returncode == 0
        assert lab.cli("vm", "start", "verb-a").returncode == 0  # a positional NAME
        yield lab
    finally:
        tear_down(started)
        ns.delete()


def test_pause_resume_and_reboot(lab):
    wait_for(lambda: lab.boots("verb-a") == 1, timeout=60, what="verb-a booting")
    events, _ = follow_events(lab.daemon)
    paused = lab.cli("vm", "pause", "verb-a")
    assert paused.returncode == 0 and paused.stdout == "Paused VM verb-a on node default.\n"
    # the VMM itself says so (QMP query-status), not only the daemon's record
    assert lab.cli("vm", "info", "--name", "verb-a", "--refresh", "--json").json()["state"] == "paused"
    again = lab.cli("vm", "pause", "verb-a")
    assert again.returncode == 0 and "paused already; nothing to do" in again.stdout
    resumed = lab.cli("vm", "resume", "--name", "verb-a", "--json")
    assert resumed.returncode == 0 and resumed.json()["state"] == "running"
    assert lab.cli("vm", "info", "--name", "verb-a", "--refresh", "--json").json()["state"] == "running"

    # reboot: the ACPI power button, the guest powers off, QEMU resets instead of ending
    pid = int((lab.daemon.root / "vm" / lab.vm("verb-a")["uuid"] / "vmm.pid").read_text())
    rebooted = lab.cli("vm", "reboot", "verb-a")
    assert rebooted.returncode == 0, rebooted.stderr
    wait_for(lambda: lab.boots("verb-a") == 2, timeout=60, what="verb-a booting again")
    assert "power button, powering off" in lab.console("verb-a")
    assert lab.vm("verb-a")["state"] == "running"
    assert int((lab.daemon.root / "vm" / lab.vm("verb-a")["uuid"] / "vmm.pid").read_text()) == pid
    forced = lab.cli("vm", "reboot", "verb-a", "--force")
    assert forced.returncode == 0, forced.stderr
    wait_for(lambda: lab.boots("verb-a") == 3, timeout=60, what="verb-a reset")
    assert lab.console("verb-a").count("power button, powering off") == 1  # a reset asks nobody
    wait_for(lambda: {"vm-paused", "vm-resumed", "vm-rebooted"}
             <= {e["event"] for e in events}, timeout=10, what="the events")
    assert [e["force"] for e in events if e["event"] == "vm-rebooted"] == [False, True]
    assert lab.vm("verb-a")["state"] == "running"


def test_bad_controls_change_nothing(lab):
    before = snapshot(lab.daemon)
    for argv, message in (
            (["vm", "pause", "verb-b"], "'verb-b' is created: only a running VM can be paused"),
            (["vm", "resume", "verb-b"], "only a paused VM can be resumed"),
            (["vm", "resume", "verb-a"], None),  # running: done already
            (["vm", "reboot", "verb-b"], "only a running VM can be rebooted"),
            (["vm", "pause", "nobody"], "no VM 'nobody'")):
        result = lab.cli(*argv)
        if message is None:
            assert result.returncode == 0 and "running already" in result.stdout
            continue
        assert result.returncode == 1, result.stdout
        assert message in one_line_error(result)
    assert lab.vm("verb-b")["state"] == "created"
    assert snapshot(lab.daemon)[0] == before[0]


def test_snapshots_bring_the_disk_back(lab):
    lab.ssh_ready("verb-a")
    lab.write_sector("verb-a", "ORIGINAL-BYTES")
    assert lab.first_sector("verb-a") == "ORIGINAL-BYTES"
    taken = lab.cli("vm", "snapshot", "create", "verb-a", "first")  # running: one QMP transaction
    assert taken.returncode == 0 and taken.stdout == "Took snapshot first of VM verb-a (disks).\n"
    lab.write_sector("verb-a", "OVERWRITTEN")
    assert lab.first_sector("verb-a") == "OVERWRITTEN"

    # bad inputs: each one line, nothing changed
    refused = lab.cli("vm", "snapshot", "restore", "verb-a", "first")
    assert refused.returncode == 1
    assert "holds its disks alone: they are restored while it is stopped" in one_line_error(refused)
    unknown = lab.cli("vm", "snapshot", "restore", "verb-a", "nope")
    assert unknown.returncode == 1
    assert "VM 'verb-a' has no snapshot 'nope'" in one_line_error(unknown)
    assert "Its snapshots: first." in unknown.stderr
    taken_twice = lab.cli("vm", "snapshot", "create", "verb-a", "first")
    assert taken_twice.returncode == 1 and "already has a snapshot 'first'" in taken_twice.stderr
    bad_name = lab.cli("vm", "snapshot", "create", "verb-a", "../etc")
    assert bad_name.returncode == 2 and "is not a snapshot name" in one_line_error(bad_name)
    assert lab.first_sector("verb-a") == "OVERWRITTEN"

    # restored while stopped: the disk reads its first bytes again
    assert lab.cli("vm", "stop", "verb-a").returncode == 0
    restored = lab.cli("vm", "snapshot", "restore", "verb-a", "first")
    assert restored.returncode == 0, restored.stderr
    assert lab.cli("vm", "start", "verb-a").returncode == 0
    lab.ssh_ready("verb-a")
    assert lab.first_sector("verb-a") == "ORIGINAL-BYTES"

    # with memory: the running guest goes back in time, its disk with it
    with_memory = lab.cli("vm", "snapshot", "create", "--name", "verb-a", "live", "--memory")
    assert with_memory.returncode == 0, with_memory.stderr
    lab.write_sector("verb-a", "AFTER-THE-SNAPSHOT")
    back = lab.cli("vm", "snapshot", "restore", "verb-a", "live", "--json")
    assert back.returncode == 0, back.stderr
    assert back.json()["state"] == "running"
    lab.ssh_ready("verb-a")
    assert lab.first_sector("verb-a") == "ORIGINAL-BYTES"

    listed = lab.cli("vm", "snapshot", "ls", "verb-a", "--json").json()
    assert [(s["name"], s["memory"], s["state"]) for s in listed] == [
        ("first", False, "running"), ("live", True, "running")]
    assert listed[1]["size"] == listed[0]["size"] + 256 * 1024**2  # its memory too
    table = lab.cli("vm", "snapshot", "ls", "verb-a").stdout
    assert "first" in table and "live" in table
    info = lab.cli("vm", "info", "--name", "verb-a").stdout.splitlines()
    assert any("snapshots" in line and "first, live" in line for line in info), info
    for name in ("first", "live"):
        assert lab.cli("vm", "snapshot", "rm", "verb-a", name).returncode == 0
    assert lab.cli("vm", "snapshot", "ls", "verb-a", "--json").json() == []


def test_resize_a_stopped_vm(lab):
    before = snapshot(lab.daemon)
    running = lab.cli("vm", "set", "verb-a", "vcpu=2")
    assert running.returncode == 1
    assert "'verb-a' is running: it can only be resized while stopped" in one_line_error(running)
    too_big = lab.cli("vm", "set", "verb-b", "vcpu=64")  # [host.limits] cpu = 300 on 2 cores
    assert too_big.returncode == 1
    assert "cannot take VM 'verb-b' at its new size: cpu" in one_line_error(too_big)
    shrink = lab.cli("vm", "disk", "resize", "verb-b", "os", "1M")
    assert shrink.returncode == 2 and "disks only grow" in one_line_error(shrink)
    assert snapshot(lab.daemon)[0] == before[0]

    resized = lab.cli("vm", "set", "verb-b", "vcpu=2", "vram=384MiB")
    assert resized.returncode == 0, resized.stderr
    assert resized.stdout == "VM verb-b: 2 vcpu, 384MiB of memory from its next start.\n"
    grown = lab.cli("vm", "disk", "resize", "verb-b", "os", "+64M")
    assert grown.returncode == 0 and grown.stdout == "VM verb-b: disk os is now 128MiB.\n"
    assert lab.cli("vm", "start", "verb-b").returncode == 0
    wait_for(lambda: "disk vda 262144 sectors" in lab.console("verb-b"), timeout=60,
             what="the guest seeing its 128 MiB disk")
    lab.ssh_ready("verb-b")
    assert lab.ssh("verb-b", "grep -c ^processor /proc/cpuinfo").stdout.strip() == "2"
    memory = int(lab.ssh("verb-b", "awk '/MemTotal/{print $2}' /proc/meminfo").stdout)
    assert 300 * 1024 < memory <= 384 * 1024  # kB, less what the kernel keeps


def test_clone_a_stopped_vm(lab):
    assert lab.cli("vm", "stop", "verb-b").returncode == 0
    source = lab.vm("verb-b")
    running = lab.cli("vm", "clone", "verb-a", "--to", "nope")
    assert running.returncode == 1 and "'verb-a' is running" in one_line_error(running)
    made = lab.cli("vm", "clone", "verb-b", "--name", "verb-c", "--json")
    assert made.returncode == 0, made.stderr
    clone = made.json()
    assert (clone["name"], clone["vcpu"], clone["vram"]) == ("verb-c", 2, 384 * 1024**2)
    assert clone["uuid"] != source["uuid"]
    assert clone["nets"][0]["mac"] != source["nets"][0]["mac"]
    before = snapshot(lab.daemon)
    taken = lab.cli("vm", "clone", "verb-b", "--to", "verb-c")
    assert taken.returncode == 1 and "a VM named 'verb-c' already exists" in one_line_error(taken)
    assert snapshot(lab.daemon) == before  # no row, no file, no id spent
    # its own cloud-init seed: a new instance-id
    seed = (lab.daemon.root / "vm" / clone["uuid"] / "cidata.iso").read_bytes()
    assert clone["uuid"].encode() in seed and source["uuid"].encode() not in seed
    assert lab.cli("vm", "start", "verb-c").returncode == 0
    wait_for(lambda: "disk vda 262144 sectors" in lab.console("verb-c"), timeout=60,
             what="the clone's copied 128 MiB disk")
    lab.ssh_ready("verb-c")
    assert lab.vm_ips("verb-c") != lab.vm_ips("verb-a")


def test_vm_ssh_runs_a_command_and_refuses_a_vm_without_a_lease(lab):
    ran = lab.ssh("verb-a", "echo ran-in-$(hostname)")
    assert ran.returncode == 0 and ran.stdout.strip() == "ran-in-virshle-guest", ran.stderr
    dry = lab.cli("vm", "ssh", "verb-a", "--user", "root", "--dry-run", "--", "uptime")
    ip = lab.vm_ips("verb-a")[0]
    uuid = lab.cli("vm", "info", "verb-a", "--json").json()["uuid"]
    assert dry.stdout.startswith("ssh -o UserKnownHostsFile=") and \
        f" -o HostKeyAlias=virshle-{uuid} " in dry.stdout, dry.stdout  # the guest's own keys
    assert dry.stdout.endswith(f" root@{ip} uptime\n"), dry.stdout
    assert lab.cli("vm", "stop", "verb-c", "--force").returncode == 0
    stopped = lab.cli("vm", "ssh", "verb-c")
    assert stopped.returncode == 1 and "'verb-c' is shutdown" in one_line_error(stopped)


def test_vm_ssh_to_a_vm_without_a_lease(tmp_path, guest):
    """A node without DHCP: the VM runs, and has no address to log in to."""
    daemon = Daemon(tmp_path, write_guest_config(tmp_path, guest, "qemu"))
    try:
        daemon.start()
        assert daemon.cli("vm", "create", "-t", "tiny", "--name", "nolease").returncode == 0
        assert daemon.cli("vm", "start", "nolease").returncode == 0
        result = daemon.cli("vm", "ssh", "nolease")
        assert result.returncode == 1
        assert "VM 'nolease' has no address: no DHCP server has leased one" in one_line_error(result)
    finally:
        daemon.close()


@pytest.mark.parametrize("path", ["fast", "click"])
def test_bulk_verbs(tmp_path, guest, path):
    """The same on both command lines: the fast path (cli/fast.py) and click's."""
    node = Daemon(tmp_path, write_guest_config(tmp_path, guest, "qemu"))
    env = {"VIRSHLE_NO_FAST": "1"} if path == "click" else {}

    class daemon:  # the node, its commands run on the path under test
        root = node.root

        @staticmethod
        def cli(*argv: str):
            return node.cli(*argv, env=env)

    try:
        node.start()
        assert daemon.cli("vm", "create", "-t", "tiny", "-n", "4", "--name", "bulk").returncode == 0
        started = daemon.cli("vm", "start", "--name", "bulk-1", "--name", "bulk-2", "bulk-3")
        assert started.returncode == 0, started.stderr
        assert sorted(started.stdout.splitlines()) == [
            f"Started VM bulk-{i} (id {i}) on node default." for i in (1, 2, 3)]
        states = {vm["name"]: vm["state"] for vm in daemon.cli("vm", "ls", "--json").json()}
        assert states == {"bulk-1": "running", "bulk-2": "running", "bulk-3": "running",
                          "bulk-4": "created"}
        uuid = daemon.cli("vm", "info", "--name", "bulk-3", "--json").json()["uuid"]
        console = daemon.root / "vm" / uuid / "console.log"
        wait_for(lambda: SHELL in console.read_text(), timeout=60,
                 what="bulk-3 listening to its power button")
        paused = daemon.cli("vm", "pause", "--all", "--json")
        assert paused.returncode == 0
        assert sorted((r["vm"], r["ok"], r["result"]["state"]) for r in paused.json()) == [
            (f"bulk-{i}", True, "paused") for i in (1, 2, 3)]
        # a paused guest hears no power button: a graceful stop resumes it first
        assert daemon.cli("vm", "stop", "bulk-3").returncode == 0
        log = console.read_text()
        assert "power button, powering off" in log, log[-500:]
        assert daemon.cli("vm", "start", "bulk-3").returncode == 0
        assert daemon.cli("vm", "pause", "bulk-3").returncode == 0
        resumed = daemon.cli("vm", "resume", "--state", "paused")
        assert resumed.returncode == 0 and len(resumed.stdout.splitlines()) == 3

        # one failure among many: every result said, exit 1
        mixed = daemon.cli("vm", "start", "bulk-1", "bulk-4")
        assert mixed.returncode == 1
        assert mixed.stdout == "Started VM bulk-4 (id 4) on node default.\n"
        assert "Error: VM bulk-1 on node default: VM 'bulk-1' is already running" in mixed.stderr
        assert "1 of 2 failed." in mixed.stderr

        # rm --all asks first; without a terminal, --yes is needed
        refused = daemon.cli("vm", "rm", "--all")
        assert refused.returncode == 2 and "add --yes to confirm" in refused.stderr
        assert len(daemon.cli("vm", "ls", "--json").json()) == 4
        both = daemon.cli("vm", "rm", "--all", "--name", "bulk-1")
        assert both.returncode == 2 and "not both" in both.stderr

        stopped = daemon.cli("vm", "stop", "--all", "--force", "--json")
        assert stopped.returncode == 0
        assert sorted(r["vm"] for r in stopped.json() if r["result"]["was_running"]) == [
            f"bulk-{i}" for i in (1, 2, 3, 4)]
        nothing = daemon.cli("vm", "stop", "--all")
        assert nothing.returncode == 0 and nothing.stdout == "No VM matches; nothing to do.\n"
        removed = daemon.cli("vm", "rm", "--all", "--yes")
        assert removed.returncode == 0 and len(removed.stdout.splitlines()) == 4
        assert daemon.cli("vm", "ls", "--json").json() == []
    finally:
        node.close()
