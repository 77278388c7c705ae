"""Nodes found through a catalogue on etcd (issue 25): a real etcd on loopback, real node
daemons registering in it, and command lines with nothing but ``[discovery.etcd]``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from virshle_core.testing.etcdlab import Etcd
from virshle_core.testing.netlab import HostNs, run
from virshle_core.testing.sshlab import SshAgent, Sshd
from tests.support import Daemon, free_port, run_cli, wait_for, write_config

pytestmark = [pytest.mark.e2e]
if not shutil.which("etcd"):
    pytestmark.append(pytest.mark.skip(reason="etcd is not installed (Debian: etcd-server)"))

TTL = 3  # seconds (10 by default): the test waits for a lease to expire


def table(etcd: Etcd, extra: str = "") -> str:
    return (f'\n[discovery.etcd]\nendpoints = ["{etcd.url}"]\nttl = {TTL}\ntimeout = 1\n'
            + extra)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    base = tmp_path_factory.mktemp("catalogue")
    etcd = Etcd(base)
    nodes = {}
    try:
        for name in ("n1", "n2", "n3"):
            directory = base / name
            directory.mkdir()
            config = write_config(directory)
            socket_path = Daemon(directory, config).socket
            config.write_text(config.read_text().replace(
                "[host]\n", f'[host]\nname = "{name}"\nadvertise_url = "unix://{socket_path}"\n', 1)
                + table(etcd))
            nodes[name] = Daemon(directory, config).start()
        cli = base / "cli.toml"  # nothing but the catalogue (this host's own, so allow_local)
        cli.write_text(table(etcd, "allow_local = true\n"))
        yield etcd, nodes, cli, base
    finally:
        for daemon in nodes.values():
            daemon.close()
        etcd.stop()


def names(result) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {node["name"] for node in result.json()}


def test_three_nodes_register_and_a_vm_is_placed_on_one(catalogue):
    etcd, nodes, cli, base = catalogue
    listed = wait_for(lambda: (lambda r: r if names(r) == set(nodes) else None)(
        run_cli("node", "ls", "--json", config=cli)), timeout=20, what="three registrations")
    for node in listed.json():
        assert node["status"] == "online" and node["source"] == "etcd"
        assert time.time() - node["seen"] < TTL + 2 and node["id"]
    shown = run_cli("node", "ls", "-v", config=cli)
    assert "s ago" in shown.stdout and "etcd" in shown.stdout
    created = run_cli("vm", "create", "-t", "xs", "--name", "placed", "--json", config=cli)
    assert created.returncode == 0, created.stderr
    (vm,) = created.json()
    assert vm["node"] in nodes
    listing = run_cli("vm", "ls", "--json", config=cli)
    assert [v["name"] for v in listing.json()] == ["placed"]
    assert run_cli("vm", "rm", "placed", "--yes", config=cli).returncode == 0


def test_a_cordon_shows_in_the_catalogue(catalogue):
    etcd, nodes, cli, base = catalogue
    cordoned = nodes["n2"].cli("node", "cordon", "default", "--reason", "patching")
    assert cordoned.returncode == 0, cordoned.stderr  # its own config: the catalogue, and itself
    try:
        def cordoned():
            entries = etcd_entries(etcd)
            return entries if entries.get("n2", {}).get("cordoned") else None
        entries = wait_for(cordoned, timeout=TTL + 5, what="the cordon in the catalogue")
        assert entries["n2"]["reason"] == "patching"
        statuses = {n["name"]: n["status"] for n in run_cli("node", "ls", "--json", config=cli).json()}
        assert statuses["n2"] == "cordoned"
    finally:
        nodes["n2"].cli("node", "uncordon", "default")


def etcd_entries(etcd: Etcd) -> dict:
    out = subprocess.run(["etcdctl", f"--endpoints={etcd.url}", "get", "--prefix",
                          "/virshle/nodes/", "--print-value-only"], capture_output=True,
                         text=True, env={**os.environ, "ETCDCTL_API": "3"})
    values = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {value["name"]: value for value in values}


def test_a_unix_entry_is_refused_without_allow_local(catalogue):
    etcd, nodes, cli, base = catalogue
    strict = base / "strict.toml"
    strict.write_text(table(etcd))
    result = run_cli("node", "ls", "--json", config=strict)
    assert result.returncode == 0 and result.json() == []
    assert result.stderr.count("is a unix:// socket") == 3 and "allow_local" in result.stderr


def test_a_wrong_host_key_behind_an_entry_is_refused(catalogue, tmp_path):
    """An entry only says where a node is: the host key is checked as for a static one."""
    etcd, nodes, cli, base = catalogue
    key = tmp_path / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
    agent = SshAgent(tmp_path / "agent", [key])
    sshd = Sshd(HostNs(), tmp_path / "sshd", "127.0.0.1", key.with_suffix(".pub"),
                port=free_port())
    try:
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "impostor"])
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        other = (tmp_path / "impostor.pub").read_text().split()
        (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
        url = f"ssh://root@127.0.0.1:{sshd.port}{nodes['n1'].socket}"
        lease = etcdctl(etcd, "lease", "grant", "30").split()[1]
        etcdctl(etcd, "put", "--lease", lease, "/virshle/nodes/far",
                json.dumps({"name": "far", "url": url, "id": "far-id", "seen": time.time()}))
        result = run_cli("node", "ls", "--json", config=cli,
                         env={"HOME": str(home), "SSH_AUTH_SOCK": str(agent.socket),
                              "XDG_CACHE_HOME": str(home / ".cache")})
        far = next(n for n in result.json() if n["name"] == "far")
        assert far["status"] == "auth_error" and "CHANGED" in far["reason"], far
        etcdctl(etcd, "lease", "revoke", lease)
    finally:
        sshd.stop()
        agent.stop()


def etcdctl(etcd: Etcd, *args: str) -> str:
    out = subprocess.run(["etcdctl", f"--endpoints={etcd.url}", *args], capture_output=True,
                         text=True, env={**os.environ, "ETCDCTL_API": "3"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_node_killed_drops_out_within_the_ttl(catalogue):
    etcd, nodes, cli, base = catalogue
    wait_for(lambda: "n3" in names(run_cli("node", "ls", "--json", config=cli)), timeout=20,
             what="n3 in the catalogue")
    killed_at = time.monotonic()
    nodes["n3"].kill9()
    wait_for(lambda: "n3" not in names(run_cli("node", "ls", "--json", config=cli)),
             timeout=TTL + 8, every=0.5, what="n3 to drop out")
    print(f"n3 dropped out {time.monotonic() - killed_at:.1f} s after kill -9 (TTL {TTL} s)")
    nodes["n3"].start()


def test_with_etcd_down_the_cache_answers_in_time(catalogue):
    etcd, nodes, cli, base = catalogue
    wait_for(lambda: names(run_cli("node", "ls", "--json", config=cli)) == set(nodes),
             timeout=20, what="every node listed (the cache filled)")
    etcd.process.send_signal(signal.SIGSTOP)  # there, but not answering: the worst case
    try:
        started = time.monotonic()
        result = run_cli("node", "ls", "--json", config=cli, timeout=30)
        took = time.monotonic() - started
        assert result.returncode == 0 and names(result) == set(nodes)
        assert "does not answer" in result.stderr and "cached" in result.stderr
        assert result.stderr.count("\n") == 1  # one line
        assert all(node["cached"] for node in result.json())
        assert took < 10, took  # the node timeout (etcd's own: 1 s here)
        listing = run_cli("vm", "ls", config=cli)
        assert listing.returncode == 0 and "cached" in listing.stderr
    finally:
        etcd.process.send_signal(signal.SIGCONT)
