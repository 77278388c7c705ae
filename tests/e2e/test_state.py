"""The daemon follows its VMs (issue 10): states from QEMU's own events, stops on the exit.

Behaviour, not timing: a change made behind the daemon's back is recorded
and announced without anybody listing; listings never ask QEMU; many
concurrent stops all end their VMMs and leave no zombie.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.support import (MARKER, VIRSHLE, Daemon, alive, make_plugin_dist, wait_for,
                           write_guest_config)

pytestmark = [pytest.mark.e2e]
if not __import__("shutil").which("qemu-system-x86_64"):
    pytestmark.append(pytest.mark.skip(reason="qemu-system-x86_64 is not installed"))


@pytest.fixture(scope="module")
def node(tmp_path_factory, guest):
    directory = tmp_path_factory.mktemp("state")
    counter = directory / "state-calls"
    leases = directory / "lease-calls"
    # a plugin that counts every virshle_vm_state call (each is a QMP round trip for QEMU)
    # and every lease query (each is a round trip to the DHCP server)
    plugins = make_plugin_dist(directory / "site", "countstate", f"""
        from virshle_core import hookimpl

        @hookimpl(tryfirst=True)
        def virshle_vm_state(vm):
            with open({str(counter)!r}, "a") as handle:
                handle.write(vm.name + "\\n")

        @hookimpl
        def virshle_lease_query(vms):
            with open({str(leases)!r}, "a") as handle:
                handle.write(",".join(vm.name for vm in vms) + "\\n")
        """)
    with_net = """
        [[template.vm]]
        name = "tiny-net"
        vcpu = 1
        vram = "256MiB"
        [[template.vm.net]]
        name = "main"
        [template.vm.net.type.tap]
        """
    daemon = Daemon(directory, write_guest_config(directory, guest, "qemu",
                                                  extra=textwrap.dedent(with_net)))
    daemon.start(env={"PYTHONPATH": str(plugins)})
    try:
        yield daemon
    finally:
        daemon.stop()
        daemon.kill_vmms()


def stored_state(node, name: str) -> str:
    """The state the daemon recorded, read from its database: no listing, no API call."""
    conn = sqlite3.connect(f"file:{node.root / 'virshle.sqlite'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT state FROM vms WHERE name = ?", [name]).fetchone()[0]
    finally:
        conn.close()


def qmp(node, vm: dict, command: str) -> dict:
    """A QMP command on the VM's second monitor, as an operator would send it."""
    from qemu.qmp import QMPClient

    async def run():
        client = QMPClient("test")
        await client.connect(str(node.root / "vm" / vm["uuid"] / "monitor.sock"))
        try:
            return await client.execute(command)
        finally:
            await client.disconnect()

    return asyncio.run(run())


class Events:
    """`virshle events --json` in the background, collecting what it prints."""

    def __init__(self, node):
        self.seen: list[dict] = []
        self.proc = subprocess.Popen([VIRSHLE, "events", "--json"], stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "VIRSHLE_CONFIG": str(node.config)})
        threading.Thread(target=lambda: [self.seen.append(json.loads(line)) for line in self.proc.stdout],
                         daemon=True).start()
        time.sleep(0.5)

    def changes(self, name: str) -> list[tuple[str, str]]:
        return [(e["old"], e["new"]) for e in self.seen
                if e["event"] == "vm-state-changed" and e["vm"]["name"] == name]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def calls(node, what: str = "state") -> int:
    counter = node.directory / f"{what}-calls"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_finding_a_vm_asks_no_dhcp_server(node):
    """stop and rm find their VM (on every node) without a lease query; info asks once."""
    assert node.cli("vm", "create", "-t", "tiny-net", "--name", "finder").returncode == 0
    before = calls(node, "lease")
    assert node.cli("vm", "stop", "--name", "finder").returncode == 0
    assert calls(node, "lease") == before
    assert node.cli("vm", "info", "--name", "finder").returncode == 0
    assert calls(node, "lease") == before + 1  # the counter counts: info shows the addresses
    assert node.cli("vm", "rm", "--name", "finder").returncode == 0
    assert calls(node, "lease") == before + 1


def test_changes_behind_the_daemons_back_are_seen_without_a_listing(node):
    events = Events(node)
    try:
        assert node.cli("vm", "create", "-t", "tiny", "--name", "behind").returncode == 0
        assert node.cli("vm", "start", "--name", "behind").returncode == 0
        vm = node.cli("vm", "info", "--name", "behind", "--json").json()
        log = node.root / "vm" / vm["uuid"] / "console.log"
        wait_for(lambda: log.exists() and MARKER in log.read_text(errors="replace"), timeout=90,
                 what="the guest to boot")

        qmp(node, vm, "stop")  # paused through QMP, by someone else
        wait_for(lambda: stored_state(node, "behind") == "paused", timeout=10, what="paused")
        qmp(node, vm, "cont")
        wait_for(lambda: stored_state(node, "behind") == "running", timeout=10, what="running")

        pid = int((log.parent / "vmm.pid").read_text())

        def power_button() -> bool:  # the guest powers itself off (once it listens to the button)
            if stored_state(node, "behind") != "shutdown":
                qmp(node, vm, "system_powerdown")
            return stored_state(node, "behind") == "shutdown"

        wait_for(power_button, timeout=60, every=3, what="shutdown")
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="QEMU reaped")

        assert node.cli("vm", "start", "--name", "behind").returncode == 0
        pid = int((log.parent / "vmm.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # QEMU killed
        wait_for(lambda: stored_state(node, "behind") == "crashed", timeout=10, what="crashed")
        wait_for(lambda: ("running", "crashed") in events.changes("behind"), timeout=10,
                 what="the crash announced")
        assert events.changes("behind")[:3] == [("running", "paused"), ("paused", "running"),
                                                ("running", "shutdown")]
    finally:
        events.close()
    assert node.cli("vm", "rm", "--name", "behind").returncode == 0


def test_a_listing_asks_no_hypervisor(node):
    for name in ("quiet-1", "quiet-2"):
        assert node.cli("vm", "create", "-t", "tiny", "--name", name).returncode == 0
        assert node.cli("vm", "start", "--name", name).returncode == 0
    before = calls(node)
    for _ in range(5):
        listing = node.cli("vm", "ls", "--json")
        assert {vm["name"]: vm["state"] for vm in listing.json()}["quiet-1"] == "running"
    assert node.cli("vm", "info", "--name", "quiet-1").returncode == 0
    time.sleep(2)  # and the supervisor's rounds do not ask either
    assert calls(node) == before
    refreshed = node.cli("vm", "info", "--name", "quiet-1", "--refresh", "--json")
    assert refreshed.json()["state"] == "running"
    assert calls(node) == before + 1  # the counter counts: an explicit refresh asks
    for name in ("quiet-1", "quiet-2"):
        assert node.cli("vm", "rm", "--force", "--name", name).returncode == 0


def test_sixteen_concurrent_stops_all_end_and_leave_no_zombie(node):
    names = [f"many-{i}" for i in range(1, 17)]
    assert node.cli("vm", "create", "-t", "tiny", "--name", "many", "-n", "16").returncode == 0
    pids = []
    for name in names:
        assert node.cli("vm", "start", "--name", name).returncode == 0
        vm = node.cli("vm", "info", "--name", name, "--json").json()
        pids.append(int((node.root / "vm" / vm["uuid"] / "vmm.pid").read_text()))
    env = {**os.environ, "VIRSHLE_CONFIG": str(node.config)}
    stops = [subprocess.Popen([VIRSHLE, "vm", "stop", "--force", "--name", name], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in names]
    for stop in stops:
        out, err = stop.communicate(timeout=120)
        assert stop.returncode == 0, err
        assert "Stopped VM" in out
    assert {vm["state"] for vm in node.cli("vm", "ls", "--json").json()
            if vm["name"] in names} == {"shutdown"}
    for pid in pids:
        assert not alive(pid) and not Path(f"/proc/{pid}").exists(), pid
    for name in names:
        assert node.cli("vm", "rm", "--name", name).returncode == 0


def test_a_restarted_daemon_follows_the_vms_it_readopts(node):
    assert node.cli("vm", "create", "-t", "tiny", "--name", "again").returncode == 0
    assert node.cli("vm", "start", "--name", "again").returncode == 0
    vm = node.cli("vm", "info", "--name", "again", "--json").json()
    node.stop()
    node.start(env={"PYTHONPATH": str(node.directory / "site")})
    assert node.cli("vm", "info", "--name", "again", "--json").json()["state"] == "running"
    log = node.root / "vm" / vm["uuid"] / "console.log"
    wait_for(lambda: MARKER in log.read_text(errors="replace"), timeout=90, what="the guest")
    qmp(node, vm, "stop")
    wait_for(lambda: stored_state(node, "again") == "paused", timeout=10, what="paused")
    assert node.cli("vm", "rm", "--force", "--name", "again").returncode == 0
