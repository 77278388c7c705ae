"""With --json, a failure is one JSON document on stdout, {"error", "message", "hint",
"node"}, and the exit status still says it failed (issue 23, item 6): a script reads one
stream. Before, the error went to stderr as text and stdout was empty."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "full command line"])
@pytest.mark.parametrize("argv,status,code", [
    (["vm", "info", "nosuch", "--json"], 1, "vm_not_found"),
    (["vm", "start", "nosuch", "--json"], 1, "vm_not_found"),
    (["vm", "create", "-t", "nope", "--json"], 1, "template_not_found"),
    (["vm", "info", "--json", "--bogus"], 2, "bad_usage"),
])
def test_a_json_failure_is_one_document(shared_daemon, fast, argv, status, code):
    result = shared_daemon.cli(*argv, env={} if fast else {"VIRSHLE_NO_FAST": "1"})
    assert result.returncode == status, result.stderr
    document = json.loads(result.stdout)
    assert document["error"] == code and document["message"]
    assert set(document) == {"error", "message", "hint", "node"}
    if code != "bad_usage":
        assert document["node"] == "default"
    assert result.stderr == ""
