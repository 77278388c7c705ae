"""The command line: global options, exit statuses, JSON on stdout only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import BIN, Daemon, run_cli, write_config


def test_version_and_alias(cli):
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("virshle, version 0.1.0")
    alias = subprocess.run([str(BIN / "v"), "--version"], capture_output=True, text=True)
    assert alias.stdout == result.stdout


def test_help_lists_core_commands(cli):
    result = cli("--help")
    for command in ("node", "template", "vm", "plugins", "events"):
        assert f"  {command}" in result.stdout


def test_verbosity_after_the_subcommand(cli, tmp_path):
    config = write_config(tmp_path)
    assert cli("node", "init", "--dir", "--db", config=config).returncode == 0
    quiet = cli("node", "ls", config=config)
    loud = cli("node", "ls", "-vvv", config=config)
    assert "url" not in quiet.stdout.splitlines()[1]
    assert "url" in loud.stdout.splitlines()[1]
    assert "vms" in loud.stdout.splitlines()[1]  # -vv adds counts and sizes, as the seed shows
    assert "no socket at" in loud.stderr  # the reason, at -v


def test_unknown_node_is_usage_error(cli, tmp_path):
    result = cli("node", "ping", "--node", "mars", config=write_config(tmp_path))
    assert result.returncode == 2
    assert "no node named 'mars'; known nodes: default" in result.stderr


def test_node_statuses_without_a_daemon(cli, tmp_path):
    config = write_config(tmp_path, extra=f"""
[[node]]
name = "gone"
url = "unix://{tmp_path}/gone.sock"

[[node]]
name = "stale"
url = "unix://{tmp_path}/stale.sock"
""")
    import socket

    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "stale.sock"))  # bound, never listening: a dead daemon's socket
    result = cli("node", "ls", "--json", config=config)
    stale.close()
    assert result.returncode == 0
    statuses = {n["name"]: n["status"] for n in json.loads(result.stdout)}
    assert statuses == {"gone": "socket_not_found", "stale": "offline"}
    ping = cli("node", "ping", config=config)
    assert ping.returncode == 1
    assert "gone: socket_not_found: node 'gone': no socket at" in ping.stderr


def test_with_the_daemon_down_vm_ls_and_template_ls_say_how_to_start_it(cli, tmp_path):
    """Before, a stale socket said only "restart `virshle node serve`", and nothing said
    that a systemd unit is the way where one is installed."""
    import socket

    config = write_config(tmp_path)
    root = Daemon(tmp_path, config).root
    root.mkdir(parents=True, exist_ok=True)
    for args in (["vm", "ls"], ["template", "ls"]):
        gone = cli(*args, config=config)
        assert gone.returncode == 1
        assert "Start the node daemon with `virshle node serve`" in gone.stderr, gone.stderr
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(root / "virshle.sock"))
    try:
        for args in (["vm", "ls"], ["template", "ls"]):
            down = cli(*args, config=config)
            assert down.returncode == 1
            assert "start it again with `virshle node serve`" in down.stderr, down.stderr
    finally:
        stale.close()


def test_json_output_is_one_document(cli, shared_daemon):
    for args in (["node", "ls", "--json"], ["node", "ls", "--all", "--json"],
                 ["template", "ls", "--json"], ["plugins", "ls", "--json"],
                 ["vm", "ls", "--json"], ["node", "ping", "--json"]):
        result = shared_daemon.cli(*args, "-vvvv")
        assert result.returncode == 0, (args, result.stderr)
        json.loads(result.stdout)  # exactly one document, logs went to stderr


def test_node_init_is_idempotent(cli, tmp_path):
    config = write_config(tmp_path)
    root = Daemon(tmp_path, config).root
    first = cli("node", "init", "--dir", "--db", "--json", config=config)
    second = cli("node", "init", "--dir", "--db", "--json", config=config)
    assert first.returncode == second.returncode == 0
    assert str(root / "vm") in first.json()["done"]["dir"]
    assert str(root / "vm") not in second.json()["done"]["dir"]
    assert (root / "virshle.sqlite").exists()
    only_dir = cli("node", "init", "--dir", "--json", config=config).json()
    assert set(only_dir["done"]) == {"dir"}


@pytest.mark.parametrize("args,message", [
    (["--name", "Bad Name"], "'Bad Name' is not a valid VM name"),
    (["--name", "a/b"], "'a/b' is not a valid VM name"),
    (["--name", ".."], "'..' is not a valid VM name"),
    (["--name", ""], "'' is not a valid VM name"),
])
def test_vm_create_bad_names_exit_2_and_leave_nothing(shared_daemon, args, message):
    result = shared_daemon.cli("vm", "create", "-t", "xs", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert shared_daemon.cli("vm", "ls", "--json").json() == []
    assert list((shared_daemon.root / "vm").iterdir()) == []


def test_vm_create_count_zero(shared_daemon):
    result = shared_daemon.cli("vm", "create", "-t", "xs", "-n", "0")
    assert result.returncode == 2 and "must be at least 1" in result.stderr


def test_vm_create_unknown_template(shared_daemon):
    result = shared_daemon.cli("vm", "create", "-t", "nope")
    assert result.returncode == 1
    assert "no template 'nope' on node 'default' (templates: xs)" in result.stderr


def test_vm_create_ls_info_rm(daemon):
    created = daemon.cli("vm", "create", "-t", "xs", "-n", "3", "--json")
    assert created.returncode == 0, created.stderr
    vms = created.json()
    assert len({vm["name"] for vm in vms}) == 3 and [vm["id"] for vm in vms] == [1, 2, 3]
    listing = daemon.cli("vm", "ls", "--json").json()
    assert [vm["name"] for vm in listing] == [vm["name"] for vm in vms]
    for key in ("id", "uuid", "name", "node", "template", "state", "vcpu", "vram", "disks",
                "nets", "ips", "created_at", "updated_at"):
        assert key in listing[0]
    assert listing[0]["disks"][0]["size"] == 1024 * 1024
    info = daemon.cli("vm", "info", "--id", "2", "--json").json()
    assert info["name"] == vms[1]["name"]
    table = daemon.cli("vm", "ls", "-vvv").stdout
    assert vms[0]["uuid"] in table and "os (1MiB)" in table
    for vm in vms:
        assert daemon.cli("vm", "rm", "--uuid", vm["uuid"]).returncode == 0
    assert daemon.cli("vm", "ls", "--json").json() == []
    assert list((daemon.root / "vm").iterdir()) == []


def test_vm_ref_needs_exactly_one(shared_daemon):
    result = shared_daemon.cli("vm", "info", "--id", "1", "--name", "x")
    assert result.returncode == 2
    assert "exactly one of --id, --name or --uuid" in result.stderr


def test_vm_create_name_taken(daemon):
    assert daemon.cli("vm", "create", "-t", "xs", "--name", "taken").returncode == 0
    again = daemon.cli("vm", "create", "-t", "xs", "--name", "taken")
    assert again.returncode == 1
    assert "a VM named 'taken' already exists on node 'default'" in again.stderr
    assert len(daemon.cli("vm", "ls", "--json").json()) == 1
    assert len(list((daemon.root / "vm").iterdir())) == 1


def test_quiet_init_prints_nothing(cli, tmp_path):
    result = cli("node", "init", "--dir", "--db", "-q", config=write_config(tmp_path))
    assert result.returncode == 0 and result.stdout == ""


def test_user_data_is_kept_with_the_vm_and_state_filters(daemon, tmp_path):
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text("#cloud-config\nhostname: kept\n")
    created = daemon.cli("vm", "create", "-t", "xs", "--name", "ud", "--user-data", str(user_data),
                         "--json")
    assert created.returncode == 0, created.stderr
    uuid = created.json()[0]["uuid"]
    assert (daemon.root / "vm" / uuid / "user-data").read_text() == user_data.read_text()
    assert [v["name"] for v in daemon.cli("vm", "ls", "--state", "created", "--json").json()] == ["ud"]
    assert daemon.cli("vm", "ls", "--state", "running", "--json").json() == []
    bad = daemon.cli("vm", "ls", "--state", "flying")
    assert bad.returncode == 2 and "flying" in bad.stderr


def test_thirty_two_concurrent_creates_get_distinct_everything(daemon):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: daemon.cli("vm", "create", "-t", "xs", "--json"), range(32)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    vms = [r.json()[0] for r in results]
    for key in ("id", "uuid", "name"):
        assert len({vm[key] for vm in vms}) == 32, key
    nets = [vm["nets"][0] for vm in vms]
    assert len({n["mac"] for n in nets}) == 32 and len({n["ifname"] for n in nets}) == 32
    assert all(len(n["ifname"]) <= 15 for n in nets)


def test_a_daemon_that_dies_mid_request_is_offline_and_the_others_still_answer(cli, shared_daemon, tmp_path):
    import socket
    import threading

    dying = tmp_path / "dying.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(dying))
    server.listen(8)

    def accept_and_die():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)  # reads the request, then goes away without a word
            conn.close()

    threading.Thread(target=accept_and_die, daemon=True).start()
    config = tmp_path / "nodes.toml"
    config.write_text(f'[[node]]\nname = "good"\nurl = "unix://{shared_daemon.socket}"\n\n'
                      f'[[node]]\nname = "dying"\nurl = "unix://{dying}"\n')
    try:
        result = cli("node", "ls", "--json", config=config)
        nodes = {n["name"]: n for n in result.json()}
        assert nodes["good"]["status"] == "online"
        assert nodes["dying"]["status"] == "offline"
        assert "closed the connection without answering" in nodes["dying"]["reason"]
        listing = cli("vm", "ls", "--json", config=config)
        assert listing.returncode == 0 and "node dying:" in listing.stderr  # named, once
        assert listing.stderr.count("dying") == 1, listing.stderr
        assert listing.json() == []  # the good node's (empty) list was still printed
        strict = cli("vm", "ls", "--json", "--strict", config=config)
        assert strict.returncode == 1 and strict.json() == []
        alone = cli("vm", "ls", "--node", "dying", config=config)  # no node answered
        assert alone.returncode == 1 and "node dying:" in alone.stderr
    finally:
        server.close()


def test_two_node_entries_that_reach_one_daemon_list_its_vms_once(daemon, cli, tmp_path):
    """The seed's `local` and `local-ssh` both reach this host's daemon: its VMs are listed
    once, under the first entry, and the user is told once; a VM is not "on several nodes"."""
    config = tmp_path / "twice.toml"
    config.write_text(f'[[node]]\nname = "local"\nurl = "unix://{daemon.socket}"\n\n'
                      f'[[node]]\nname = "local-again"\nurl = "unix://{daemon.socket}"\n')
    assert daemon.cli("vm", "create", "-t", "xs", "--name", "once").returncode == 0
    for args in (["vm", "ls", "--json"], ["vm", "ls", "-vv", "--json"]):
        listing = cli(*args, config=config)
        assert listing.returncode == 0, listing.stderr
        assert [(vm["name"], vm["node"]) for vm in listing.json()] == [("once", "local")]
        assert listing.stderr.count("reach the same daemon") == 1
        assert "'local' and 'local-again'" in listing.stderr
    info = cli("vm", "info", "--name", "once", "--json", config=config)
    assert info.returncode == 0, info.stderr
    assert info.json()["node"] == "local"
    nodes = cli("node", "ls", config=config)
    assert nodes.returncode == 0 and nodes.stderr.count("reach the same daemon") == 1


def test_the_cli_warns_only_of_template_disks_it_can_see(shared_daemon, cli, tmp_path):
    """Templates are the daemon's: `~` is the daemon user's home, and another host's files
    are not this one's. The CLI warns of a missing disk only on its own host, never of `~`."""
    templates = ('\n[[template.vm]]\nname = "home"\n[[template.vm.disk]]\nname = "os"\n'
                 'path = "~/virshle-test-missing.img"\n'
                 '\n[[template.vm]]\nname = "gone"\n[[template.vm.disk]]\nname = "os"\n'
                 'path = "/nonexistent/virshle-test.img"\n')
    local = tmp_path / "local.toml"
    local.write_text(f'[[node]]\nname = "here"\nurl = "unix://{shared_daemon.socket}"\n' + templates)
    for _ in range(2):  # validated, then from the cached view (the fast path's)
        listed = cli("template", "ls", config=local)
        assert listed.returncode == 0, listed.stderr
        assert "/nonexistent/virshle-test.img is not a file" in listed.stderr
        assert "virshle-test-missing.img" not in listed.stderr
    remote = tmp_path / "remote.toml"
    remote.write_text(local.read_text().replace(
        "\n[[template.vm]]", '\n[[node]]\nname = "far"\nurl = "ssh://root@127.0.0.1:1/x.sock"\n'
        'timeout = 1\n\n[[template.vm]]', 1))
    listed = cli("template", "ls", config=remote)
    assert "is not a file" not in listed.stderr


def test_the_daemon_logs_the_template_disks_it_cannot_find(tmp_path):
    """The daemon, which reads the templates, says which of its disks are missing (with `~`
    as its own user's home) when it starts."""
    config = write_config(tmp_path, extra='\n[[template.vm]]\nname = "home"\n[[template.vm.disk]]\n'
                                          'name = "os"\npath = "~/virshle-test-missing.img"\n')
    node = Daemon(tmp_path, config)
    node.start()
    try:
        log = node.log_path.read_text()
    finally:
        node.stop()
    assert f"{Path.home()}/virshle-test-missing.img is not a file" in log


@pytest.mark.parametrize("args", [
    ["node", "ls", "--config", "{config}"],
    ["vm", "ls", "--config={config}", "-q"],
    ["--json", "--config", "{config}", "vm", "ls"],
    ["--json", "vm", "ls", "--config", "{config}"],
    ["node", "ping", "--json", "--config", "{config}"],
])
def test_global_options_go_before_or_after_the_subcommand(shared_daemon, args, tmp_path):
    """--config and --json work on either side of the subcommand, as -v and -q do."""
    from virshle_core.testing import run_cli

    config = tmp_path / "where.toml"
    config.write_text(f'[[node]]\nname = "there"\nurl = "unix://{shared_daemon.socket}"\n')
    result = run_cli(*[arg.format(config=config) for arg in args],
                     env={"VIRSHLE_CONFIG": str(tmp_path / "missing.toml")})  # not this one
    assert result.returncode == 0, result.stderr
    if "--json" in args:
        json.loads(result.stdout)
    if args[0] == "node":
        assert "there" in result.stdout


def test_autostart_is_a_setting_of_each_vm(daemon, cli):
    """`vm create --autostart` and `vm set NAME autostart=...` (libvirt's autostart)."""
    config = daemon.config
    assert cli("vm", "create", "-t", "xs", "--name", "auto", "--autostart", config=config).returncode == 0
    assert cli("vm", "create", "-t", "xs", "--name", "manual", config=config).returncode == 0
    info = {vm["name"]: vm for vm in cli("vm", "ls", "--json", config=config).json()}
    assert info["auto"]["autostart"] is True and info["manual"]["autostart"] is False
    changed = cli("vm", "set", "manual", "autostart=true", config=config)
    assert changed.returncode == 0 and "autostart is on" in changed.stdout
    assert cli("vm", "set", "--name", "auto", "autostart=off", "--json", config=config).json()["autostart"] is False
    shown = cli("vm", "info", "--name", "manual", config=config).stdout
    assert "autostart" in shown and "on" in shown
    for words, message in ((["manual", "autostart=maybe"], "autostart must be true or false"),
                           (["manual", "colour=red"], "settings are autostart="),
                           (["manual"], "say what to change")):
        refused = cli("vm", "set", *words, config=config)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr


def test_bulk_verbs_span_the_nodes_or_one(daemon, cli, tmp_path):
    """`vm rm --all` acts on every node's VMs, `--node` on one node's; several names are
    found wherever they are. (Created VMs: no guest is needed to remove them.)"""
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = Daemon(other_dir, write_config(other_dir))
    try:
        other.start()
        config = tmp_path / "two.toml"
        config.write_text(f'[[node]]\nname = "a"\nurl = "unix://{daemon.socket}"\n\n'
                          f'[[node]]\nname = "b"\nurl = "unix://{other.socket}"\n')
        for node, names in ((daemon, ("a-1", "a-2")), (other, ("b-1", "b-2"))):
            for name in names:
                assert node.cli("vm", "create", "-t", "xs", "--name", name).returncode == 0
        on_b = cli("vm", "rm", "--all", "--node", "b", "--yes", "--json", config=config)
        assert on_b.returncode == 0, on_b.stderr
        assert sorted((r["vm"], r["node"], r["ok"]) for r in on_b.json()) == [
            ("b-1", "b", True), ("b-2", "b", True)]
        by_name = cli("vm", "rm", "a-1", "--name", "a-2", config=config)
        assert by_name.returncode == 0, by_name.stderr
        assert sorted(by_name.stdout.splitlines()) == [
            "Removed VM a-1 (id 1) from node a.", "Removed VM a-2 (id 2) from node a."]
        assert cli("vm", "ls", "--json", config=config).json() == []
        missing = cli("vm", "stop", "a-1", "b-9", config=config)
        assert missing.returncode == 1 and "no VM 'a-1' on any node" in missing.stderr
    finally:
        other.close()


def test_a_selector_targets_the_nodes_with_its_labels(tmp_path):
    """--selector rack=a (or VIRSHLE_SELECTOR): only the nodes with that label, from
    [[node]] labels as from a catalogue's; none matching is a usage error (exit 2)."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[[node]]\nname = "a1"\nurl = "unix:///nowhere/a1.sock"\nlabels = { rack = "a" }\n\n'
        '[[node]]\nname = "b1"\nurl = "unix:///nowhere/b1.sock"\nlabels = { rack = "b" }\n\n'
        '[[node]]\nname = "a2"\nurl = "unix:///nowhere/a2.sock"\n'
        'labels = { rack = "a", disk = "ssd" }\n')
    for env in ({}, {"VIRSHLE_NO_FAST": "1"}):
        listed = run_cli("--selector", "rack=a", "node", "ls", "--json", config=config, env=env)
        assert sorted(n["name"] for n in listed.json()) == ["a1", "a2"], listed.stderr
    both = run_cli("-l", "rack=a", "-l", "disk=ssd", "node", "ls", "--json", config=config)
    assert [n["name"] for n in both.json()] == ["a2"]
    from_env = run_cli("node", "ls", "--json", config=config, env={"VIRSHLE_SELECTOR": "rack=b"})
    assert [n["name"] for n in from_env.json()] == ["b1"]
    listing = run_cli("vm", "ls", config=config, env={"VIRSHLE_SELECTOR": "rack=b"})
    assert "b1" in listing.stderr and "a1" not in listing.stderr  # the fast path stood aside
    none = run_cli("--selector", "rack=z", "vm", "ls", config=config)
    assert none.returncode == 2 and "no managed node has the labels rack=z" in none.stderr
    bad = run_cli("--selector", "rack", "vm", "ls", config=config)
    assert bad.returncode == 2 and "not KEY=VALUE" in bad.stderr
