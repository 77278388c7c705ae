"""The CLI against a real ``virshle node serve`` process on a temporary root."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time

import pytest

from tests.support import exchange, follow_events, raw, wait_for
from virshle_core.client import http


def test_ping(shared_daemon):
    result = shared_daemon.cli("node", "ping")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("default: pong in ")
    status, body = raw(shared_daemon, "GET", "/api/v1/node/ping")
    assert status == 200 and body["pong"] is True and body["node"] == "default"


def test_node_ls_all_json_keys(shared_daemon):
    result = shared_daemon.cli("node", "ls", "--all", "--json")
    assert result.returncode == 0, result.stderr
    (node,) = json.loads(result.stdout)
    assert {"name", "url", "weight", "status", "cpu", "ram", "disk", "vms", "saturation"} <= set(node)
    assert node["status"] == "online" and node["name"] == "default"
    assert node["url"] == f"unix://{shared_daemon.socket}"
    for resource in ("cpu", "ram", "disk"):
        assert {"total", "used", "reserved"} <= set(node[resource])
        assert node[resource]["total"] > 0
    assert node["ram"]["total"] >= node["ram"]["used"] > 0
    assert node["cpu"]["total"] == os.cpu_count()
    assert isinstance(node["saturation"], float)


def test_node_ls_seed_spelling_one_dash_all(shared_daemon):
    result = shared_daemon.cli("node", "ls", "-all", "-vvv")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[1]
    for column in ("name", "status", "url", "cpu reserved", "ram reserved", "disk reserved"):
        assert column in header


def test_template_ls(shared_daemon):
    result = shared_daemon.cli("template", "ls", "--json")
    assert result.returncode == 0, result.stderr
    (xs,) = json.loads(result.stdout)
    assert xs["name"] == "xs" and xs["vcpu"] == 1 and xs["vram"] == 2 * 1024**3
    assert xs["nodes"] == ["default"] and xs["nets"][0]["type"] == "tap"
    table = shared_daemon.cli("template", "ls")
    assert "│ xs" in table.stdout and "2GiB" in table.stdout


@pytest.mark.parametrize("body,field", [
    (b'{"template": "xs", "colour": "red"}', "colour: unknown key"),
    (b'{"template": 3}', "template: must be a string"),
    (b'{"name": "x"}', "template: is required"),
    (b'{"template": "xs", "count": "2"}', "count: must be an integer"),
])
def test_bad_body_is_400_with_the_error_shape(shared_daemon, body, field):
    status, reply = raw(shared_daemon, "POST", "/api/v1/vms", body)
    assert status == 400
    assert set(reply) == {"error", "message", "hint"}
    assert reply["error"] == "bad_body" and field in reply["message"]
    assert shared_daemon.cli("vm", "ls", "--json").json() == []  # nothing created


def test_not_json_is_400(shared_daemon):
    status, reply = raw(shared_daemon, "POST", "/api/v1/vms", b"{not json")
    assert status == 400 and reply["error"] == "bad_json"


def test_unknown_vm_is_404(shared_daemon):
    status, reply = raw(shared_daemon, "GET", "/api/v1/vms/nope")
    assert status == 404
    assert reply == {"error": "vm_not_found", "message": "no VM 'nope' on node 'default'",
                     "hint": "List the VMs with `virshle vm ls`; refer to one by --id, --name or --uuid."}
    result = shared_daemon.cli("vm", "info", "--name", "nope")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: no VM 'nope' on node 'default'")


def test_unknown_route_and_method(shared_daemon):
    status, reply = raw(shared_daemon, "GET", "/api/v1/nothing")
    assert status == 404 and reply["error"] == "no_route"
    status, reply = raw(shared_daemon, "PUT", "/api/v1/node/ping")
    assert status == 405 and reply["error"] == "method_not_allowed"


def test_unknown_template_is_404(shared_daemon):
    status, reply = raw(shared_daemon, "POST", "/api/v1/vms", b'{"template": "huge"}')
    assert status == 404 and reply["error"] == "template_not_found"
    assert "templates: xs" in reply["message"]


def test_socket_mode_and_group(shared_daemon):
    mode = os.stat(shared_daemon.socket)
    assert stat.S_ISSOCK(mode.st_mode)
    assert stat.S_IMODE(mode.st_mode) == 0o660
    import grp

    assert grp.getgrgid(mode.st_gid).gr_name == "virshle"


def test_openapi_describes_exactly_the_routes_served(shared_daemon):
    from openapi_spec_validator import validate

    status, document = raw(shared_daemon, "GET", "/api/v1/openapi.json")
    assert status == 200
    validate(document)
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    # Ask the daemon for every documented route, and for routes it must not have.
    for method, path in sorted(documented):
        probe = path.replace("{ref}", "no-such-vm").replace("{disk}", "os").replace(
            "{snapshot}", "first")
        if path.endswith("/events"):
            continue  # a stream; checked in test_events_stream
        if path.startswith("/api/v1/x/"):  # a plugin's (the metrics' is text)
            assert exchange(shared_daemon, method, probe)[0] == 200, path
            continue
        body = {"/node/init": b'{"parts": ["dir"]}',  # not the host's net
                "/gc": b'{"dry_run": true}',  # nor its devices
                "/snapshots": b'{"name": "first"}',
                "/migrate": b'{"id": "m", "to": "n"}'}.get(path[path.rfind("/"):], b"{}")
        code, reply = raw(shared_daemon, method, probe, body if method in ("POST", "PATCH") else None)
        if "{ref}" in path:
            assert (code, reply["error"]) == (404, "vm_not_found"), (method, path, code)
        elif "{id}" in path:  # a move of that id (there is none): the route's own 404
            assert (code, reply["error"]) == (404, "no_move"), (method, path, code)
        else:
            assert code not in (404, 405), (method, path, code)
    expected = {
        ("GET", "/api/v1/node/ping"), ("GET", "/api/v1/node/info"), ("POST", "/api/v1/node/init"),
        ("POST", "/api/v1/node/reload"), ("POST", "/api/v1/node/gc"),
        ("GET", "/api/v1/templates"),
        ("GET", "/api/v1/vms"), ("POST", "/api/v1/vms"), ("GET", "/api/v1/vms/{ref}"),
        ("DELETE", "/api/v1/vms/{ref}"), ("PATCH", "/api/v1/vms/{ref}"),
        ("GET", "/api/v1/events"), ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/vms/{ref}/start"), ("POST", "/api/v1/vms/{ref}/stop"),
        ("GET", "/api/v1/vms/{ref}/console"), ("GET", "/api/v1/vms/{ref}/logs"),
        ("POST", "/api/v1/vms/{ref}/pause"), ("POST", "/api/v1/vms/{ref}/resume"),
        ("POST", "/api/v1/vms/{ref}/reboot"), ("POST", "/api/v1/vms/{ref}/clone"),
        ("POST", "/api/v1/vms/{ref}/disks/{disk}/resize"),
        ("GET", "/api/v1/vms/{ref}/snapshots"), ("POST", "/api/v1/vms/{ref}/snapshots"),
        ("POST", "/api/v1/vms/{ref}/snapshots/{snapshot}/restore"),
        ("DELETE", "/api/v1/vms/{ref}/snapshots/{snapshot}"),
        ("POST", "/api/v1/node/cordon"), ("POST", "/api/v1/node/uncordon"),  # sorted: both
        ("POST", "/api/v1/vms/{ref}/migrate"),
        ("GET", "/api/v1/vms/{ref}/migrate/{id}/stream/{channel}"),
        ("POST", "/api/v1/vms/{ref}/migrate/{id}/perform"),
        ("POST", "/api/v1/vms/{ref}/migrate/{id}/confirm"),
        ("POST", "/api/v1/vms/{ref}/migrate/{id}/abort"),
        ("GET", "/api/v1/moves"), ("POST", "/api/v1/moves"), ("DELETE", "/api/v1/moves/{id}"),
        ("GET", "/api/v1/moves/{id}/stream/{channel}"), ("POST", "/api/v1/moves/{id}/start"),
        ("POST", "/api/v1/moves/{id}/finish"),
        ("GET", "/api/v1/x/metrics"),  # the metrics plugin's
    }
    assert documented == expected


def test_openapi_matches_the_server_router():
    """The document is generated from the route table; the router must hold nothing else."""
    from virshle_core.config import parse_config
    from virshle_core.daemon.openapi import openapi_document
    from virshle_core.daemon.node import Node
    from virshle_core.daemon.routes import API, Api

    api = Api(Node(parse_config("", path=None)))
    served = set(api.make_router().routes())
    document = openapi_document(api.routes, API, "test")
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert served == documented


def test_events_stream_and_vm_create_delete(daemon):
    lines, thread = follow_events(daemon, count=3)
    assert lines[0] == {"event": "hello", "node": "default"}
    created = daemon.cli("vm", "create", "-t", "xs", "--name", "evt", "--json")
    assert created.returncode == 0, created.stderr
    removed = daemon.cli("vm", "rm", "--name", "evt")
    assert removed.returncode == 0, removed.stderr
    thread.join(10)
    assert [e["event"] for e in lines[1:]] == ["vm-created", "vm-deleted"]
    assert lines[1]["vm"]["name"] == "evt" and lines[1]["node"] == "default"


def test_virshle_events_command_prints_live(daemon):
    import subprocess

    from tests.support import VIRSHLE

    env = {**os.environ, "VIRSHLE_CONFIG": str(daemon.config)}
    proc = subprocess.Popen([VIRSHLE, "events", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1.0)
        assert daemon.cli("vm", "create", "-t", "xs", "--name", "live").returncode == 0
        line = proc.stdout.readline()
        event = json.loads(line)
        assert event["event"] == "vm-created" and event["vm"]["name"] == "live"
    finally:
        proc.terminate()
        proc.wait(10)


def test_sigterm_finishes_and_removes_the_socket(daemon):
    # an open event stream must not hold the shutdown
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.socket))
    response = http.request(sock, "GET", "/api/v1/events")
    assert response.status == 200
    start = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - start < 10
    assert not daemon.socket.exists()
    assert "node 'default' stopped" in daemon.log()
    response.close()
    result = daemon.cli("node", "ls", "--json")
    assert result.json()[0]["status"] == "socket_not_found"


def test_sigint_too(daemon):
    assert daemon.stop(signal.SIGINT) == 0
    assert not daemon.socket.exists()


def test_in_flight_create_is_undone_on_sigterm(tmp_path):
    """A create that is running when SIGTERM arrives is cancelled, undone, and answered."""
    from tests.support import Daemon, make_plugin_dist, write_config

    marker = tmp_path / "create-started"
    plugins = make_plugin_dist(tmp_path / "site", "slow", f"""
        import pathlib, time
        from virshle_core import hookimpl

        @hookimpl
        def virshle_pre_create(vm):
            pathlib.Path({str(marker)!r}).write_text(vm.name)
            time.sleep(2)
        """)
    node = Daemon(tmp_path, write_config(tmp_path))
    node.start(env={"PYTHONPATH": str(plugins)})
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(node.socket))
        sock.settimeout(60)
        body = json.dumps({"template": "xs", "name": "inflight"}).encode()
        sock.sendall(b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        deadline = time.monotonic() + 20
        # the file appears a moment before its text: wait for the text
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.read_text() == "inflight"
        node.process.send_signal(signal.SIGTERM)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 503"), data[:300]
        assert b'"error": "cancelled"' in data and b"was undone" in data
        assert node.process.wait(30) == 0
        assert not node.socket.exists()
        assert list((node.root / "vm").iterdir()) == []
        assert sqlite_rows(node.root) == 0
    finally:
        node.stop()


def sqlite_rows(root) -> int:
    import sqlite3

    conn = sqlite3.connect(root / "virshle.sqlite")
    try:
        return conn.execute("SELECT count(*) FROM vms").fetchone()[0]
    finally:
        conn.close()


def test_second_daemon_on_the_same_root_is_refused(shared_daemon):
    import subprocess

    from tests.support import VIRSHLE

    env = {**os.environ, "VIRSHLE_CONFIG": str(shared_daemon.config)}
    proc = subprocess.run([VIRSHLE, "node", "serve"], capture_output=True, text=True, env=env,
                          timeout=30)
    assert proc.returncode == 1
    assert f"another node daemon (pid {shared_daemon.process.pid}) already serves" in proc.stderr
    assert shared_daemon.cli("node", "ping").returncode == 0


def test_create_streams_progress_to_clients_that_ask(daemon):
    from virshle_core.client import NodeClient
    from virshle_core.config import NodeEntry
    from virshle_core.errors import NotFound

    client = NodeClient(NodeEntry(name="default", url=f"unix://{daemon.socket}"))
    seen = []
    created = client.create_vms({"template": "xs", "name": "prog"},
                                on_progress=lambda what, done, total: seen.append((what, done, total)))
    assert created[0].name == "prog"
    # copied, then verified, each reported in bytes
    assert seen[0][0] == "caching disk.img" and seen[-1] == ("checking disk.img", 1024**2, 1024**2)
    again = []
    client.create_vms({"template": "xs"}, on_progress=lambda *a: again.append(a))
    assert again == []  # the cache is warm: nothing long to report
    with pytest.raises(NotFound, match="no template 'nope'"):
        client.create_vms({"template": "nope"}, on_progress=lambda *a: None)


def test_console_logs_are_capped_and_rotated(tmp_path):
    from virshle_core.daemon.supervisor import LOG_CAP, rotate_console_log
    from virshle_core.models import Vm

    vm = Vm(id=1, uuid="u", name="n", node="d", template="t", vcpu=1, vram=1, dir=str(tmp_path))
    log = tmp_path / "console.log"
    log.write_bytes(b"a" * (LOG_CAP - 10))
    rotate_console_log(None, vm)
    assert log.stat().st_size == LOG_CAP - 10 and not (tmp_path / "console.log.1").exists()
    with open(log, "ab") as handle:  # the VMM appends
        handle.write(b"b" * 20)
    rotate_console_log(None, vm)
    assert log.stat().st_size == 0
    assert (tmp_path / "console.log.1").read_bytes().endswith(b"b" * 20)


def test_events_reconnect_when_the_daemon_restarts(daemon):
    import subprocess

    from tests.support import VIRSHLE

    env = {**os.environ, "VIRSHLE_CONFIG": str(daemon.config)}
    proc = subprocess.Popen([VIRSHLE, "events", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1.0)
        daemon.stop()
        daemon.start()
        time.sleep(2.5)  # the follower notices the daemon is back
        assert daemon.cli("vm", "create", "-t", "xs", "--name", "after").returncode == 0
        event = json.loads(proc.stdout.readline())
        assert event["event"] == "vm-created" and event["vm"]["name"] == "after"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "reconnecting" in err and "reconnected" in err


def test_one_connection_carries_pipelined_requests_and_chunked_bodies(shared_daemon):
    """Requests sent back to back on one connection are answered in order; a chunked body
    is read like a sized one; ``Connection: close`` ends the connection after its reply."""
    import re

    body = b'{"template": "no-such-template"}'
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(shared_daemon.socket))
    sock.sendall(b"GET /api/v1/node/ping HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + chunked
                 + b"HEAD /api/v1/node/ping HTTP/1.1\r\nHost: x\r\n\r\n"
                 + b"GET /api/v1/nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):  # ends only because the last request said close
        data += chunk
    sock.close()
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", data) == [b"200", b"404", b"200", b"404"]  # HEAD: a GET's head
    bodies = re.findall(rb"\r\n\r\n(\{.*?\})(?=HTTP/1.1 |$)", data, re.S)
    assert [json.loads(b).get("error") for b in bodies] == [
        None, "template_not_found", "no_route"]  # a reply to HEAD has no body


def test_the_cluster_helpers_serve_python_callers_without_click(shared_daemon, tmp_path):
    """Placing, creating and finding VMs across nodes is a library (client/cluster.py): a
    Python program uses it without the command line, and click is never imported."""
    import subprocess
    import sys

    template = "xs"
    program = f"""
import sys
from virshle_core.client import NodeClient
from virshle_core.wire.api import CreateRequest
from virshle_core.client.cluster import create_placed, find_vm, place, uuid_ref
from virshle_core.config import NodeEntry
from virshle_core.wire.refs import VmRef

client = NodeClient(NodeEntry(name="here", url="unix://{shared_daemon.socket}"))
plan = place([client], "{template}", 2)
made = create_placed(plan, CreateRequest(template="{template}"), "lib")
assert [vm.name for vm in made] == ["lib-1", "lib-2"], made
found, vm = find_vm([client], VmRef.parse("name:lib-2"))
assert found is client and vm.uuid == made[1].uuid
for vm in made:
    client.rm(uuid_ref(vm))
print("click" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_node_init_runs_in_the_daemon_and_its_event_reaches_the_stream(daemon):
    """With a daemon serving, `node init` is the daemon's work: `node-initialized` reaches
    `GET /events` (run in the command line's process, no subscriber could hear it)."""
    lines, thread = follow_events(daemon, count=2)
    result = daemon.cli("node", "init", "--dir", "--db", "--json")
    assert result.returncode == 0, result.stderr
    assert set(result.json()["done"]) == {"dir", "db"}
    thread.join(10)
    assert lines[1]["event"] == "node-initialized"
    assert lines[1]["parts"] == ["db", "dir"] and lines[1]["node"] == "default"
    refused = daemon.cli("node", "init", "--db", "--force-new")
    assert refused.returncode == 1 and "cannot be set aside now" in refused.stderr


def test_node_reload_and_sighup_put_a_changed_config_in_force(daemon, tmp_path):
    """A template added to the node's file is there after `node reload` (or SIGHUP), without
    a restart; a file that does not validate is refused whole, with its line, and the
    configuration in force stays."""
    from virshle_core.testing import run_cli

    cli_config = tmp_path / "cli.toml"  # the CLI's own file: it only names the node
    cli_config.write_text(f'[[node]]\nname = "here"\nurl = "unix://{daemon.socket}"\n')

    def cli(*args):
        return run_cli(*args, config=cli_config)

    text = daemon.config.read_text()
    created = cli("vm", "create", "-t", "big", "--name", "early")
    assert created.returncode == 1 and "node reload" in created.stderr  # the hint says how
    daemon.config.write_text(text + '\n[[template.vm]]\nname = "big"\nvcpu = 2\nvram = 4\n')
    reloaded = cli("node", "reload")
    assert reloaded.returncode == 0, reloaded.stderr
    assert "templates: xs, big" in reloaded.stdout
    assert cli("vm", "create", "-t", "big", "--name", "later").returncode == 0

    daemon.config.write_text(text + '\n[[template.vm]]\nname = "bad"\nvcpu = 0\n')
    refused = cli("node", "reload")
    assert refused.returncode == 2, refused.stderr
    assert "vcpu: must be >= 1" in refused.stderr and f"{daemon.config}:" in refused.stderr
    assert cli("vm", "create", "-t", "big", "--name", "still").returncode == 0  # still in force

    daemon.config.write_text(text + '\n[[template.vm]]\nname = "huge"\nvcpu = 4\nvram = 8\n')
    os.kill(daemon.pid, signal.SIGHUP)
    wait_for(lambda: "huge" in cli("template", "ls").stdout, timeout=10)
    assert "configuration reloaded" in daemon.log_path.read_text()
    assert [vm["name"] for vm in cli("vm", "ls", "--json").json()] == ["later", "still"]
