"""The systemd unit `node init --systemd` installs: what it runs, and that systemd reads it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import VIRSHLE, run_cli, write_config

REPO = Path(__file__).resolve().parents[2]


def installed_unit(tmp_path: Path, config: Path) -> Path:
    units = tmp_path / "units"
    result = run_cli("node", "init", "--dir", "--systemd", "--json", config=config,
                     env={"VIRSHLE_SYSTEMD_UNIT_DIR": str(units)})
    assert result.returncode == 0, result.stderr
    assert result.json()["done"]["systemd"] == [f"{units / 'virshle.service'} written"]
    return units / "virshle.service"


def test_node_init_systemd_writes_a_unit_that_runs_this_virshle(tmp_path):
    config = write_config(tmp_path)
    unit = installed_unit(tmp_path, config).read_text()
    assert f"ExecStart={VIRSHLE} --config {config} node serve\n" in unit
    for line in ("KillMode=process", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in unit.splitlines()
    again = run_cli("node", "init", "--dir", "--systemd", "--json", config=config,
                    env={"VIRSHLE_SYSTEMD_UNIT_DIR": str(tmp_path / "units")})
    assert again.json()["done"]["systemd"] == []  # in place: nothing to do


def test_contrib_links_to_the_packaged_unit():
    contrib = REPO / "contrib" / "systemd" / "virshle.service"
    assert contrib.resolve() == (REPO / "virshle_core" / "systemd" / "virshle.service").resolve()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    unit = installed_unit(tmp_path, write_config(tmp_path))
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                              text=True)
    assert verified.returncode == 0, verified.stderr
    assert "virshle.service" not in verified.stderr  # no warning about it either


def test_without_systemd_the_last_line_says_how_to_start_it_instead(tmp_path):
    """`node init --systemd` where systemd does not run (a container, this machine) ended
    with "Start it with `systemctl start virshle`" (issue 23, item 7)."""
    config = write_config(tmp_path)
    result = run_cli("node", "init", "--dir", "--systemd", config=config,
                     env={"VIRSHLE_SYSTEMD_UNIT_DIR": str(tmp_path / "units")})
    assert result.returncode == 0, result.stderr
    running = Path("/run/systemd/system").is_dir() and shutil.which("systemctl")
    how = "`systemctl start virshle`" if running else "`virshle node serve`"
    assert result.stdout.rstrip().endswith(f"Start it with {how}."), result.stdout



def test_hook_virshle_service_after(tmp_path):
    """The unit starts after the services the node's plugins use, named by the plugins
    (the core knows no Kea): Kea through its control agent, and Open vSwitch for taps."""
    config = write_config(tmp_path, extra='\n[dhcp.kea]\nurl = "http://127.0.0.1:8000"\n')
    after = next(line for line in installed_unit(tmp_path, config).read_text().splitlines()
                 if line.startswith("After="))
    units = after.split("=", 1)[1].split()
    assert units[0] == "network-online.target" and sorted(units[1:]) == [
        "kea-ctrl-agent.service", "kea-dhcp4-server.service", "openvswitch-switch.service"]
    bare = tmp_path / "bare"
    bare.mkdir()
    plain = write_config(bare)
    plain.write_text(plain.read_text().split("[[template.vm.net]]")[0])  # no tap, no Kea
    after = next(line for line in installed_unit(bare, plain).read_text().splitlines()
                 if line.startswith("After="))
    assert after == "After=network-online.target", after
