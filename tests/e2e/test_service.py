"""The service as systemd runs it: the unit's own ExecStart, stopped and started again as
`KillMode=process` does (SIGTERM to the daemon alone), with real QEMU guests: a running
guest outlives the restart and is followed again, and a guest marked autostart is booted
when the daemon starts and finds it stopped."""

from __future__ import annotations

import os
import shlex
import signal

import pytest

from tests.support import (Daemon, alive, installed_hypervisors, run_cli, wait_for,
                           write_guest_config)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not installed_hypervisors(),
                                                  reason="no hypervisor installed")]


def exec_start(tmp_path, config) -> list[str]:
    units = tmp_path / "units"
    installed = run_cli("node", "init", "--dir", "--db", "--systemd", config=config,
                        env={"VIRSHLE_SYSTEMD_UNIT_DIR": str(units)})
    assert installed.returncode == 0, installed.stderr
    (line,) = [line for line in (units / "virshle.service").read_text().splitlines()
               if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def info(node, name: str) -> dict:
    result = node.cli("vm", "info", "--name", name, "--json")
    assert result.returncode == 0, result.stderr
    return result.json()


def vmm_pid(node, vm: dict) -> int:
    return int((node.root / "vm" / vm["uuid"] / "vmm.pid").read_text())


def test_a_restart_as_systemd_does_it_keeps_guests_and_starts_the_autostart_ones(tmp_path, guest):
    config = write_guest_config(tmp_path, guest, "qemu")
    node = Daemon(tmp_path, config, command=exec_start(tmp_path, config), init_parts=())
    node.start()
    try:
        assert node.cli("vm", "create", "-t", "tiny", "--name", "kept").returncode == 0
        assert node.cli("vm", "create", "-t", "tiny", "--name", "boot", "--autostart").returncode == 0
        assert node.cli("vm", "create", "-t", "tiny", "--name", "idle").returncode == 0
        assert node.cli("vm", "start", "--name", "kept").returncode == 0
        kept = vmm_pid(node, info(node, "kept"))

        node.stop(signal.SIGTERM)  # KillMode=process: the daemon alone gets the signal
        assert alive(kept)
        node.start()
        assert info(node, "kept")["state"] == "running"  # followed again, same VMM
        assert vmm_pid(node, info(node, "kept")) == kept
        wait_for(lambda: info(node, "boot")["state"] == "running", timeout=60,
                 what="the autostart VM to be started")
        assert info(node, "idle")["state"] == "created"
        assert "autostart: started VM 'boot'" in node.log()

        os.kill(node.pid, signal.SIGHUP)  # ExecReload
        wait_for(lambda: "configuration reloaded" in node.log(), timeout=10)
        assert info(node, "kept")["state"] == "running"
        for name in ("kept", "boot"):
            assert node.cli("vm", "stop", "--force", "--name", name).returncode == 0
        assert not alive(kept)
    finally:
        node.stop()
        node.kill_vmms()
