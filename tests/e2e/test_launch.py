"""`vm launch` and `vm create --start` (issue 23, item 4): create and start in one step, as
`incus launch` and `multipass launch` do. A VM whose start fails stays, created, and the
error says how to remove it; --rm-on-failure removes it. (--wait-ip and --ssh need a
lease: tests/e2e/test_net.py.)"""

from __future__ import annotations

import time

import pytest

from tests.support import Daemon, installed_hypervisors, wait_for, write_guest_config

pytestmark = pytest.mark.skipif("qemu" not in installed_hypervisors(), reason="QEMU missing")


def test_launch_creates_and_starts(tmp_path, guest):
    daemon = Daemon(tmp_path, write_guest_config(tmp_path, guest)).start()
    try:
        launched = daemon.cli("vm", "launch", "-t", "tiny", "--name", "l1")
        assert launched.returncode == 0, launched.stderr
        assert "Created VM l1 (id 1)" in launched.stdout
        assert "Started VM l1 (id 1)" in launched.stdout
        assert daemon.cli("vm", "info", "l1", "--json").json()["state"] == "running"
        wait_for(lambda: "Enter 'help'" in daemon.cli("vm", "logs", "l1").stdout, timeout=90,
                 what="the guest's shell")
        time.sleep(1)  # its prompt asks the terminal where the cursor is: ESC [6n
        assert "\x1b[6n" in daemon.cli("vm", "logs", "l1", "--raw").stdout
        assert "\x1b" not in daemon.cli("vm", "logs", "l1").stdout  # a pipe gets no codes
        started = daemon.cli("vm", "create", "-t", "tiny", "-n", "2", "--name", "c", "--start",
                             "--json")
        assert started.returncode == 0, started.stderr
        assert [(vm["name"], vm["state"]) for vm in started.json()] == \
            [("c-1", "running"), ("c-2", "running")]
        no_net = daemon.cli("vm", "launch", "-t", "tiny", "--name", "l2", "--wait-ip")
        assert no_net.returncode == 1 and "VM 'l2' has no network" in no_net.stderr
        alone = daemon.cli("vm", "create", "-t", "tiny", "--wait-ip")
        assert alone.returncode == 2 and "go with --start" in alone.stderr
        two = daemon.cli("vm", "launch", "-t", "tiny", "-n", "2", "--ssh")
        assert two.returncode == 2 and "--ssh logs in to one VM" in two.stderr
    finally:
        daemon.close()


def test_a_start_that_fails_leaves_the_vm_or_removes_it(tmp_path, guest):
    config = write_guest_config(tmp_path, guest)
    config.write_text(config.read_text().replace(
        "stop_timeout = 20", 'stop_timeout = 20\n[qemu]\nbinary = "qemu-system-nowhere"', 1))
    daemon = Daemon(tmp_path, config).start()
    try:
        kept = daemon.cli("vm", "launch", "-t", "tiny", "--name", "bad")
        assert kept.returncode == 1
        assert "Error: VM bad did not start: " in kept.stderr
        assert "remove it with `virshle vm rm bad`" in kept.stderr
        assert daemon.cli("vm", "info", "bad", "--json").json()["state"] == "created"
        removed = daemon.cli("vm", "launch", "-t", "tiny", "--name", "gone", "--rm-on-failure")
        assert removed.returncode == 1 and "it was removed (--rm-on-failure)" in removed.stderr
        assert [vm["name"] for vm in daemon.cli("vm", "ls", "--json").json()] == ["bad"]
    finally:
        daemon.close()
