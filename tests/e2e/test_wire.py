"""Every reply of a running daemon matches the daemon's own OpenAPI document.

The document is generated from ``virshle_core.wire.api``; this drives every route on a
real node (a guest boots under QEMU), including its errors, the NDJSON lines of a
streamed create and the lines of the event stream, and validates each reply with
openapi-core. A reply whose shape drifts from the declared one fails here.
"""

from __future__ import annotations

import json

import pytest

from tests.support import (Daemon, exchange, follow_events, installed_hypervisors, wait_for,
                           write_guest_config)
from virshle_core.wire import api

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not installed_hypervisors(),
                                                  reason="no hypervisor installed")]


class Conformance:
    """Sends requests and checks each reply against the daemon's OpenAPI document."""

    def __init__(self, daemon):
        from openapi_core import OpenAPI

        self.daemon = daemon
        status, _, payload = exchange(daemon, "GET", "/api/v1/openapi.json")
        assert status == 200
        self.document = json.loads(payload)
        self.openapi = OpenAPI.from_dict(self.document)
        self.checked: list[tuple[str, str, int]] = []

    def line_schema(self, name: str, value: object) -> None:
        """One NDJSON line against a component schema (OpenAPI has no schema per line)."""
        from openapi_schema_validator import OAS30Validator

        root = {"$ref": f"#/components/schemas/{name}", "components": self.document["components"]}
        OAS30Validator(root).validate(value)

    def send(self, method: str, target: str, body: object = None, expect: int = 200,
             headers: dict[str, str] | None = None, line: str = "CreateLine") -> object:
        from openapi_core.testing import MockRequest, MockResponse

        raw = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        status, content_type, payload = exchange(self.daemon, method, target, raw, headers,
                                                 timeout=120)
        assert status == expect, (method, target, status, payload[:500])
        path, _, query = target.partition("?")
        args = dict(part.partition("=")[::2] for part in query.split("&") if part)
        media = content_type.split(";")[0]
        if media == "application/x-ndjson":
            line_class = line
            lines = [json.loads(text) for text in payload.splitlines() if text.strip()]
            for one in lines:
                self.line_schema(line_class, one)
            self.checked.append((method, path, status))
            return lines
        request = MockRequest("http://localhost", method.lower(), path, args=args, data=raw,
                              headers=headers or {})
        response = MockResponse(payload, status_code=status, content_type=media)
        self.openapi.validate_response(request, response)
        self.checked.append((method, path, status))
        return json.loads(payload) if media == "application/json" else payload


@pytest.fixture(scope="module")
def node(tmp_path_factory, guest):
    directory = tmp_path_factory.mktemp("wire")
    daemon = Daemon(directory, write_guest_config(directory, guest, "qemu"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        daemon.kill_vmms()


def test_every_reply_matches_the_openapi_document(node):
    wire = Conformance(node)
    events, _ = follow_events(node)

    wire.send("GET", "/api/v1/node/ping")
    info = wire.send("GET", "/api/v1/node/info")
    assert api.NodeInfo.from_json(info, strict=True).name == "default"
    templates = wire.send("GET", "/api/v1/templates")
    template = templates[0]["name"]
    wire.send("GET", "/api/v1/openapi.json")
    done = wire.send("POST", "/api/v1/node/init", {"parts": ["dir", "db"]})
    assert set(done["done"]) == {"dir", "db"}
    wire.send("POST", "/api/v1/node/init", {"parts": ["disk"]}, expect=400)
    assert template in wire.send("POST", "/api/v1/node/reload")["templates"]
    wire.send("POST", "/api/v1/node/init", {"parts": ["db"], "force_new": True}, expect=409)
    assert wire.send("POST", "/api/v1/node/gc", {"dry_run": True})["dry_run"] is True

    # create, in one piece and streamed; a streamed failure is a line too
    (made,) = wire.send("POST", "/api/v1/vms", {"template": template, "name": "wire"}, expect=201)
    streamed = wire.send("POST", "/api/v1/vms", {"template": template, "name": "wire-2"}, expect=201,
                         headers={"Accept": "application/x-ndjson"})
    assert streamed[-1]["result"][0]["name"] == "wire-2"
    failed = wire.send("POST", "/api/v1/vms", {"template": "nope"}, expect=201,
                       headers={"Accept": "application/x-ndjson"})
    assert failed[-1]["error"]["error"] == "template_not_found" and failed[-1]["status"] == 404

    ref = f"uuid:{made['uuid']}"
    wire.send("GET", "/api/v1/vms")
    wire.send("GET", "/api/v1/vms?state=created")
    wire.send("GET", f"/api/v1/vms/{ref}")
    wire.send("GET", f"/api/v1/vms/{ref}?leases=0")
    assert wire.send("PATCH", f"/api/v1/vms/{ref}", {"autostart": True})["autostart"] is True
    wire.send("PATCH", f"/api/v1/vms/{ref}", {"autostart": "yes"}, expect=400)
    wire.send("POST", f"/api/v1/vms/{ref}/start")
    wire.send("GET", f"/api/v1/vms/{ref}?refresh=1")
    wait_for(lambda: b"login" in exchange(node, "GET", f"/api/v1/vms/{ref}/logs")[2]
             or b"#" in exchange(node, "GET", f"/api/v1/vms/{ref}/logs")[2], timeout=120)
    wire.send("GET", f"/api/v1/vms/{ref}/logs")
    wire.send("GET", "/api/v1/x/metrics")  # the metrics plugin's, in Prometheus' text format
    assert wire.send("POST", f"/api/v1/vms/{ref}/pause")["state"] == "paused"
    assert wire.send("POST", f"/api/v1/vms/{ref}/resume")["state"] == "running"
    wire.send("POST", f"/api/v1/vms/{ref}/reboot", {"force": True})
    wire.send("POST", f"/api/v1/vms/{ref}/reboot", {"hard": True}, expect=400)
    wire.send("POST", f"/api/v1/vms/{ref}/snapshots", {"name": "w1"}, expect=201)
    assert [s["name"] for s in wire.send("GET", f"/api/v1/vms/{ref}/snapshots")] == ["w1"]
    wire.send("POST", f"/api/v1/vms/{ref}/snapshots/w1/restore", expect=409)  # running
    wire.send("POST", f"/api/v1/vms/{ref}/clone", {}, expect=409)  # running
    stopped = wire.send("POST", f"/api/v1/vms/{ref}/stop", {"force": True})
    assert stopped["was_running"] is True
    wire.send("POST", f"/api/v1/vms/{ref}/stop", {"force": True})  # already stopped: a no-op
    wire.send("POST", f"/api/v1/vms/{ref}/pause", expect=409)
    wire.send("POST", f"/api/v1/vms/{ref}/snapshots/w1/restore")
    wire.send("POST", f"/api/v1/vms/{ref}/snapshots/nope/restore", expect=404)
    wire.send("DELETE", f"/api/v1/vms/{ref}/snapshots/w1")
    wire.send("POST", f"/api/v1/vms/{ref}/disks/os/resize", {"grow": 1024**2})
    wire.send("POST", f"/api/v1/vms/{ref}/disks/os/resize", {"size": 1024}, expect=400)
    wire.send("POST", f"/api/v1/vms/{ref}/disks/nope/resize", {"grow": 1}, expect=404)
    clone = wire.send("POST", f"/api/v1/vms/{ref}/clone", {"name": "wire-3"}, expect=201)
    assert clone["name"] == "wire-3"
    cloned = wire.send("POST", f"/api/v1/vms/{ref}/clone", {"name": "wire-4"}, expect=201,
                       headers={"Accept": "application/x-ndjson"}, line="CloneLine")
    assert cloned[-1]["result"]["name"] == "wire-4"
    wire.send("POST", f"/api/v1/vms/{ref}/clone", {"name": "wire-4"}, expect=409)
    # a move, as far as one node goes: its begin, its journal, the refusals of the rest
    assert wire.send("POST", "/api/v1/node/cordon", {"reason": "wire"})["cordoned"] is True
    assert wire.send("POST", "/api/v1/node/uncordon")["cordoned"] is False
    offer = wire.send("POST", f"/api/v1/vms/{ref}/migrate",
                      {"id": "m1", "to": "another-node", "to_name": "far"})
    assert offer["vm"]["uuid"] == made["uuid"] and offer["files"]
    assert [m["id"] for m in wire.send("GET", "/api/v1/moves")] == ["m1"]
    wire.send("POST", "/api/v1/moves", offer, expect=400)  # the node it comes from
    wire.send("GET", f"/api/v1/vms/{ref}/migrate/m1/stream/files", expect=400)  # no Upgrade
    wire.send("POST", f"/api/v1/vms/{ref}/migrate/m1/perform", {}, expect=409)  # no files went
    wire.send("POST", f"/api/v1/vms/{ref}/migrate/nope/confirm", expect=409)  # not that move
    wire.send("POST", f"/api/v1/vms/{ref}/start", expect=409)  # moving: nothing else
    assert wire.send("POST", f"/api/v1/vms/{ref}/migrate/m1/abort")["moving_to"] is None
    wire.send("GET", "/api/v1/moves/m1/stream/files", expect=404)
    for method, path in (("POST", "start"), ("POST", "finish"), ("DELETE", "")):
        wire.send(method, f"/api/v1/moves/m1/{path}".rstrip("/"), expect=404)
    for name in ("wire-3", "wire-4"):
        wire.send("DELETE", f"/api/v1/vms/name:{name}")
    wire.send("DELETE", f"/api/v1/vms/{ref}")
    wire.send("DELETE", "/api/v1/vms/name:wire-2?force=1")

    # errors: each an Error document with a code from the catalogue
    wire.send("GET", "/api/v1/vms?state=bogus", expect=400)
    wire.send("GET", "/api/v1/vms/name:ghost", expect=404)
    wire.send("POST", "/api/v1/vms", {"template": template, "colour": "red"}, expect=400)
    wire.send("POST", "/api/v1/vms", b"{not json", expect=400)
    wire.send("POST", "/api/v1/vms", {"template": "nope"}, expect=404)
    (again,) = wire.send("POST", "/api/v1/vms", {"template": template, "name": "taken"}, expect=201)
    wire.send("POST", "/api/v1/vms", {"template": template, "name": "taken"}, expect=409)
    wire.send("POST", "/api/v1/vms/name:taken/stop", {"force": "yes"}, expect=400)
    wire.send("GET", "/api/v1/vms/name:taken/console", expect=409)  # not running
    wire.send("DELETE", "/api/v1/vms/name:taken")
    for target, status in (("/api/v1/nowhere", 404), ("/api/v1/node/ping", 405)):
        method = "GET" if status == 404 else "POST"
        _, _, payload = exchange(node, method, target, b"{}" if method == "POST" else None)
        wire.line_schema("Error", json.loads(payload))

    # the event stream: every line one of the declared events
    wait_for(lambda: sum(e["event"] == "vm-deleted" for e in events) >= 5, timeout=10)
    for event in events:
        wire.line_schema("Event", event)
    wire.checked.append(("GET", "/api/v1/events", 200))
    kinds = {event["event"] for event in events}
    assert {"hello", "node-initialized", "vm-created", "vm-started", "vm-stopped",
            "vm-deleted", "vm-paused", "vm-resumed", "vm-rebooted", "vm-resized",
            "snapshot-created", "snapshot-restored", "snapshot-deleted"} <= kinds

    # every route of the document was exercised (the console's only by its refusal)
    routes = {(m.upper(), p) for p, operations in wire.document["paths"].items() for m in operations}
    exercised = {(m, _pattern(p)) for m, p, _ in wire.checked}
    assert routes - exercised == set()


def _pattern(path: str) -> str:
    parts = path.split("/")
    if len(parts) > 4 and parts[3] == "vms":
        parts[4] = "{ref}"
    if len(parts) > 6 and parts[5] in ("disks", "snapshots"):
        parts[6] = "{disk}" if parts[5] == "disks" else "{snapshot}"
    if len(parts) > 6 and parts[5] == "migrate":
        parts[6] = "{id}"
    if len(parts) > 4 and parts[3] == "moves":
        parts[4] = "{id}"
    if "stream" in parts[:-1]:
        parts[parts.index("stream") + 1] = "{channel}"
    return "/".join(parts).split("?")[0]


def test_error_codes_in_the_sources_are_in_the_catalogue():
    """Every ``code="..."`` the core and the built-in plugins raise is published."""
    import ast
    from pathlib import Path

    from virshle_core.wire.errorcodes import ErrorCode

    root = Path(__file__).resolve().parents[2]
    known = {code.value for code in ErrorCode}
    found = {}
    for path in [*root.glob("virshle_core/**/*.py"), *root.glob("plugins/*/virshle_*/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            values = []
            if isinstance(node, ast.Call):
                values += [kw.value for kw in node.keywords if kw.arg == "code"]
                if getattr(node.func, "id", getattr(node.func, "attr", "")) == "HTTPError" \
                        and len(node.args) > 1:
                    values.append(node.args[1])
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "code" for t in node.targets):
                values.append(node.value)
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.setdefault(value.value, str(path.relative_to(root)))
    unknown = {code: where for code, where in found.items() if code not in known}
    assert not unknown, f"add these to virshle_core/wire/errorcodes.py: {unknown}"
    assert len(found) >= 50
