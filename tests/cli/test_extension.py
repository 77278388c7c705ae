"""Plugins extend the daemon and the verbs (issue 21, item 2): the example plugin
examples/virshle-ping, installed as a third party's, declares a verb (vm ping-guest), a
route of its own and a service, with the core's own hooks; each appears where the core's do.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import Daemon, raw, wait_for, write_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "virshle-ping"


@pytest.fixture(scope="module")
def ping_site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("ping-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--target", str(target), str(EXAMPLE)], check=True,
                   capture_output=True, text=True)
    return target


@pytest.fixture(scope="module")
def node(ping_site, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ext")
    daemon = Daemon(directory, write_config(directory))
    daemon.start(env={"PYTHONPATH": str(ping_site)})
    try:
        yield daemon
    finally:
        daemon.stop()


def cli(node, ping_site, *args, fast=True):
    env = {"PYTHONPATH": str(ping_site)}
    if not fast:
        env["VIRSHLE_NO_FAST"] = "1"
    return node.cli(*args, env=env)


def test_hook_virshle_verbs(node, ping_site):
    """One declaration: the route and its OpenAPI entry, NodeClient, both command lines, the
    bulk form, the help, and docs/api.md's row."""
    for name in ("one", "two", "three"):
        assert node.cli("vm", "create", "-t", "xs", "--name", name).returncode == 0
    # the route, in the OpenAPI document
    status, document = raw(node, "GET", "/api/v1/openapi.json")
    assert "/api/v1/vms/{ref}/ping-guest" in document["paths"]
    assert "PingReply" in document["components"]["schemas"]
    # its state check: the VMs are created, the verb acts on running ones
    status, reply = raw(node, "POST", "/api/v1/vms/one/ping-guest", b"{}")
    assert status == 409 and "acts on a running or paused VM" in reply["message"], reply
    for fast in (True, False):
        refused = cli(node, ping_site, "vm", "ping-guest", "one", fast=fast)
        assert refused.returncode == 1 and "acts on a running or paused VM" in refused.stderr
        everything = cli(node, ping_site, "vm", "ping-guest", "--all", "--json", fast=fast)
        assert everything.returncode == 0 and everything.json() == [], everything.stderr
        by_state = cli(node, ping_site, "vm", "ping-guest", "--state", "created", "--json", fast=fast)
        assert by_state.returncode == 1 and len(by_state.json()) == 3
    helped = cli(node, ping_site, "vm", "ping-guest", "--help")
    assert "Ask whether a VM's guest is there" in helped.stdout and "--quiet-guest" in helped.stdout
    assert "virshle vm ping-guest --all" in helped.stdout
    # NodeClient, from the plugin's declaration
    program = (f"from virshle_core.client import NodeClient\nfrom virshle_core.config import NodeEntry\n"
               f"c = NodeClient(NodeEntry(name='n', url='unix://{node.socket}'))\n"
               f"try:\n    c.ping_guest('name:one')\nexcept Exception as e:\n    print(e.code)\n")
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ping_site), "PATH": "/usr/bin:/bin"})
    assert run.stdout.strip() == "vm_not_running", run.stderr
    # docs/api.md's rows are made from the declarations: the plugin's too, when installed
    program = "import sys; sys.path.insert(0, 'docs'); import cogs; print(cogs.verb_routes())"
    rows = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], env={"PYTHONPATH": str(ping_site)})
    assert "`POST /api/v1/vms/{ref}/ping-guest`" in rows.stdout, rows.stderr


def test_hook_virshle_routes(node, ping_site):
    status, reply = raw(node, "GET", "/api/v1/x/ping/pings")
    assert status == 200 and reply["node"] == "default" and reply["pings"] >= 0
    status, document = raw(node, "GET", "/api/v1/openapi.json")
    assert "/api/v1/x/ping/pings" in document["paths"]


def test_hook_virshle_services(node, ping_site):
    count = node.root / "ping-count"
    wait_for(count.exists, timeout=10, what="the ping plugin's service to write its count")
    node.stop()
    assert "plugin ping: service counter started" in node.log()
    assert "the ping counter stops" in node.log()
    node.start(env={"PYTHONPATH": str(ping_site)})


def test_a_service_never_runs_in_a_command_line(node, ping_site, tmp_path):
    marker = node.root / "ping-count"
    marker.unlink()
    node.stop()
    assert cli(node, ping_site, "vm", "ls").returncode in (0, 1)
    assert cli(node, ping_site, "node", "ls", fast=False).returncode == 0
    assert not marker.exists()
    node.start(env={"PYTHONPATH": str(ping_site)})
