"""docs/operating.md, followed step by step in a network namespace of the test's own,
with Virshle installed as the guide installs it: from the wheels, into a venv under /opt.

The guide's own configuration blocks are read from the page (Virshle's config.toml,
kea-dhcp4.conf, kea-ctrl-agent.conf), with only their paths moved into the test's
directory and the template's disk swapped for the test guest: `node init --all` makes
br0 on Open vSwitch, br0 gets the guide's address, Kea serves the guide's subnet with
lease_cmds behind the control agent, the daemon runs from the unit `node init
--systemd` wrote, a guest boots and its lease comes back through `tcp://localhost:8000`,
and `node reload` puts a new template in force.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support import Daemon, installed_hypervisors, short_dir, wait_for
from virshle_core.testing.netlab import Netns, Ovs, end, listening, start_kea, tear_down

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "docs" / "operating.md").read_text()

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not installed_hypervisors(),
                                                  reason="no hypervisor installed")]


def block(language: str, containing: str) -> str:
    """The guide's code block in ``language`` that contains ``containing``."""
    for text in re.findall(rf"```{language}\n(.*?)```", GUIDE, re.S):
        if containing in text:
            return text
    raise AssertionError(f"docs/operating.md has no {language} block with {containing!r}")


class Process:
    """A Kea program in the namespace, on a configuration file (netlab.start_kea)."""

    def __init__(self, ns: Netns, argv: list, directory: Path, ready):
        self.process = start_kea(ns, argv, directory, ready)

    def stop(self) -> None:
        end(self.process)


def test_the_operators_guide_works_as_written(guest, installed_wheels):
    virshle = str(installed_wheels / "venv" / "bin" / "virshle")

    def v(*args: str, netns: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
        """The installed virshle, as an operator types it (in the namespace when it acts there)."""
        prefix = ["ip", "netns", "exec", ns.name] if netns else []
        return subprocess.run([*prefix, virshle, *args], capture_output=True, text=True, cwd="/",
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                                   "HOME": str(base), "VIRSHLE_CONFIG": str(config_path),
                                   **(env or {})}, timeout=120)

    ns = Netns(f"vsh-guide{os.getpid() % 10000}")
    base = short_dir("gd")
    parts: list = [ns]
    try:
        # 2. the guide's config.toml, its paths moved here, the test guest as its template
        ovs = Ovs(ns, base / "ovs")
        parts.append(ovs)
        config_text = block("toml", "[host]")
        config = tomllib.loads(config_text)
        assert config["dhcp"]["kea"]["url"] == "tcp://localhost:8000"
        root = base / "root"
        config_text = config_text.replace(f'root = "{config["host"]["root"]}"', f'root = "{root}"')
        config_text = re.sub(r'\[\[template\.vm\.disk\]\].*?(?=\n\[\[template\.vm\.net\]\])', "",
                             config_text, flags=re.S)
        config_text = config_text.replace(
            'vram = 1\n', f'vram = "256MiB"\nkernel = "{guest}/vmlinuz"\n'
                          f'initramfs = "{guest}/initramfs.gz"\n'
                          'cmdline = "console=ttyS0 quiet panic=-1"\n')
        config_text = config_text.replace('bridge = "br0"', f'bridge = "br0"\ndb = "{ovs.url}"')
        config_text = config_text.replace('hypervisor = "auto"', 'hypervisor = "qemu"')
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "id")],
                       check=True)
        config_text = config_text.replace('"/root/.ssh/id_ed25519.pub"', f'"{base}/id.pub"')
        config_path = base / "config.toml"
        config_path.write_text(config_text)

        # `node init --all` makes br0; it gets the guide's address
        init = v("node", "init", "--all", netns=True)
        assert init.returncode == 0, init.stderr
        assert "br0" in ovs.vsctl("list-br")
        for line in block("sh", "ip addr add").strip().splitlines():
            ns.exec(shlex.split(line))

        # 3. Kea with lease_cmds, behind the control agent, as the guide writes them
        kea_dir = base / "kea"
        kea_dir.mkdir()
        dhcp4 = json.loads(block("json", '"Dhcp4"'))
        dhcp4["Dhcp4"]["control-socket"]["socket-name"] = str(kea_dir / "kea4.sock")
        dhcp4["Dhcp4"]["lease-database"]["name"] = str(kea_dir / "leases4.csv")
        (kea_dir / "kea-dhcp4.conf").write_text(json.dumps(dhcp4))
        parts.append(Process(ns, ["kea-dhcp4", "-c", str(kea_dir / "kea-dhcp4.conf")], kea_dir,
                             lambda: (kea_dir / "kea4.sock").exists()))
        agent = json.loads(block("json", '"Control-agent"'))
        agent["Control-agent"]["control-sockets"]["dhcp4"]["socket-name"] = str(kea_dir / "kea4.sock")
        (kea_dir / "kea-ctrl-agent.conf").write_text(json.dumps(agent))
        port = agent["Control-agent"]["http-port"]
        parts.append(Process(
            ns, ["kea-ctrl-agent", "-c", str(kea_dir / "kea-ctrl-agent.conf")], kea_dir,
            lambda: listening(ns, port)))

        # 4. the service: the unit node init --systemd writes, its ExecStart run as is
        units = base / "units"
        installed = v("node", "init", "--systemd", netns=True,
                      env={"VIRSHLE_SYSTEMD_UNIT_DIR": str(units)})
        assert installed.returncode == 0, installed.stderr
        (exec_start,) = [line.removeprefix("ExecStart=") for line in
                         (units / "virshle.service").read_text().splitlines()
                         if line.startswith("ExecStart=")]
        assert exec_start.startswith(f"{virshle} ")  # the installed one, not this checkout's
        node = Daemon(base, config_path, command=shlex.split(exec_start), netns=ns.name,
                      init_parts=())
        node.start()
        parts.append(node)

        # a guest of the guide's template gets its address, read back through the agent
        assert v("vm", "create", "-t", "small", "--name", "first").returncode == 0
        started = v("vm", "start", "--name", "first")
        assert started.returncode == 0, started.stderr
        listed = wait_for(lambda: [vm for vm in json.loads(v("vm", "ls", "--json").stdout)
                                   if vm["ips"]],
                          timeout=120, what="the guest's lease, through kea-ctrl-agent")
        assert listed[0]["ips"][0].startswith("10.10.0.")

        # 5. a template added to the file is there after node reload
        config_path.write_text(config_text + '\n[[template.vm]]\nname = "tiny"\nvcpu = 1\n'
                                             'vram = "128MiB"\n')
        reloaded = v("node", "reload")
        assert reloaded.returncode == 0 and "tiny" in reloaded.stdout, reloaded.stderr
        assert v("vm", "stop", "--force", "--name", "first").returncode == 0
    finally:
        tear_down(parts)  # the daemon and its VMs, Kea, OVS, then the namespace
