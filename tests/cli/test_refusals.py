"""Refusals are ordinary: one log line each with its code, never a traceback; and what an
error quotes of the input is cut (issue 19, items 2 and 4)."""

from __future__ import annotations

import json
import re
import socket

import pytest

from tests.support import exchange, one_line_error, raw

LONG = "a" * 10_000


def refusals(daemon, tmp_path):
    """About sixty requests the node must refuse, through the CLI and on the raw socket."""
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("bad: [\n")
    not_a_key = tmp_path / "not-a-key.pub"
    not_a_key.write_text("hello\n")
    cli = [
        ("vm", "create", "-t", "xs", "--name", "taken"),
        ("vm", "create", "-t", "xs", "--name", "taken", "-u", str(bad_yaml)),
        ("vm", "create", "-t", "nope"),
        ("vm", "create", "-t", "xs", "--name", "123"),
        ("vm", "create", "-t", "xs", "--name", LONG),
        ("vm", "create", "-t", "xs", "--name", "Bad_Name"),
        ("vm", "info", "--name", "missing"),
        ("vm", "info", "--name", LONG),
        ("vm", "info", "--id", "999999"),
        ("vm", "start", "--name", "missing"),
        ("vm", "stop", "--name", "missing"),
        ("vm", "rm", "--name", "missing"),
        ("vm", "pause", "--name", "taken"),
        ("vm", "reboot", "--name", "taken"),
        ("vm", "snapshot", "restore", "--name", "taken", "nope"),
        ("vm", "snapshot", "rm", "--name", "taken", "nope"),
        ("vm", "set", "--name", "taken", "vcpu=0"),
        ("vm", "disk", "resize", "--name", "taken", "os", "+0"),
        ("vm", "disk", "resize", "--name", "taken", "nodisk", "+1M"),
        ("vm", "clone", "--name", "taken", "--to", "taken"),
        ("vm", "clone", "--name", "missing", "--to", "other"),
        ("vm", "logs", "--name", "missing"),
    ]
    for args in cli:
        result = daemon.cli(*args)
        assert result.returncode != 0, args
    for _ in range(3):  # the refusals the issue saw: a name taken, a key file missing, bad YAML
        status, _, _ = exchange(daemon, "POST", "/api/v1/vms",
                                json.dumps({"template": "xs", "name": "taken"}).encode(),
                                headers={"Accept": "application/x-ndjson"})
        assert status == 201  # a stream: its last line is the error
    requests = [
        ("POST", "/api/v1/vms", b"{"),
        ("POST", "/api/v1/vms", b"[]"),
        ("POST", "/api/v1/vms", json.dumps({"template": "xs", "bogus": 1}).encode()),
        ("POST", "/api/v1/vms", json.dumps({"template": "xs", "count": 0}).encode()),
        ("POST", "/api/v1/vms", json.dumps({"template": "xs", "count": 10**9}).encode()),
        ("POST", "/api/v1/vms", json.dumps({"template": LONG}).encode()),
        ("POST", "/api/v1/vms", json.dumps({"template": "xs", "name": "taken"}).encode()),
        ("POST", "/api/v1/vms", json.dumps({"template": "xs", "user_data": "bad: [\n"}).encode()),
        ("POST", "/api/v1/vms", json.dumps({"template": "xs",
                                            "ssh_authorized_keys": [str(not_a_key)]}).encode()),
        ("POST", "/api/v1/vms", json.dumps({"template": "xs",
                                            "ssh_authorized_keys": ["/no/such/key.pub"]}).encode()),
        ("GET", "/api/v1/vms/missing", None),
        ("GET", "/api/v1/vms/" + "b" * 5000, None),
        ("GET", "/api/v1/vms/id:x", None),
        ("GET", "/api/v1/vms?state=bogus", None),
        ("GET", "/api/v1/vms?bogus=1", None),
        ("GET", "/api/v1/nothing", None),
        ("PUT", "/api/v1/vms", None),
        ("DELETE", "/api/v1/vms/missing", None),
        ("POST", "/api/v1/vms/missing/start", None),
        ("POST", "/api/v1/vms/taken/stop", json.dumps({"force": "yes"}).encode()),
        ("PATCH", "/api/v1/vms/taken", json.dumps({"vcpu": -1}).encode()),
        ("PATCH", "/api/v1/vms/taken", json.dumps({"nope": 1}).encode()),
        ("POST", "/api/v1/vms/taken/pause", None),
        ("POST", "/api/v1/vms/taken/snapshots", json.dumps({"name": "1" * 200}).encode()),
        ("POST", "/api/v1/node/init", json.dumps({"parts": ["bogus"]}).encode()),
        ("POST", "/api/v1/node/init", json.dumps({"force_new": True}).encode()),
    ]
    for method, path, body in requests:
        status, _, _ = exchange(daemon, method, path, body)
        assert 400 <= status < 500, (method, path[:80], status)
    # clients that go away in the middle of an answer
    for _ in range(10):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(daemon.socket))
        body = json.dumps({"template": "xs", "name": "taken"}).encode()
        sock.sendall(b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nAccept: application/x-ndjson\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        sock.recv(10)
        sock.close()
    return len(cli) + 3 + len(requests) + 10


def test_refusals_log_one_line_each_and_no_traceback(daemon, tmp_path):
    assert daemon.cli("vm", "create", "-t", "xs", "--name", "taken").returncode == 0
    count = refusals(daemon, tmp_path)
    assert count >= 60
    assert daemon.cli("node", "ping").returncode == 0
    log = daemon.log()
    assert "Traceback" not in log, log[-4000:]
    assert "never retrieved" not in log, log[-4000:]
    assert " ERROR " not in log, log[-4000:]
    refused = [line for line in log.splitlines() if re.search(r"\b(INFO|WARNING)\b.* -> 4\d\d ", line)]
    assert any("name_taken" in line for line in refused), log[-4000:]
    assert any("not_found" in line for line in refused), log[-4000:]
    assert all(len(line) < 400 for line in log.splitlines()), "a log line quotes a whole input"


def test_errors_cut_what_they_echo(shared_daemon):
    for args in (("vm", "info", "--name", LONG), ("vm", "create", "-t", "xs", "--name", LONG),
                 ("vm", "create", "-t", LONG), ("vm", "start", LONG)):
        result = shared_daemon.cli(*args)
        assert result.returncode != 0
        line = one_line_error(result)
        assert len(line) < 300 and "a" * 81 not in line, line[:400]
    status, body = raw(shared_daemon, "GET", "/api/v1/vms/" + "c" * 5000)
    assert status in (400, 404) and len(body["message"]) < 300 and "c" * 81 not in body["message"]
    status, body = raw(shared_daemon, "POST", "/api/v1/vms",
                       json.dumps({"template": "xs", "name": LONG}).encode())
    assert status == 400 and len(body["message"]) < 300, body["message"][:400]
    status, body = raw(shared_daemon, "POST", "/api/v1/vms", json.dumps({LONG: 1}).encode())
    assert status == 400 and len(body["message"]) < 300, body["message"][:400]


@pytest.mark.parametrize("value", ["x" * 5000])
def test_config_errors_cut_what_they_echo(tmp_path, cli, value):
    config = tmp_path / "config.toml"
    config.write_text(f'[host]\nroot = "/tmp/x"\nhypervisor = "{value}"\n[[template.vm]]\n'
                      f'name = "{value}"\nvcpu = 1\nvram = 1\n')
    result = cli("template", "ls", config=config)
    assert result.returncode == 2
    assert all(len(line) < 300 for line in result.stderr.splitlines()), result.stderr[:600]
    assert "x" * 81 not in result.stderr
