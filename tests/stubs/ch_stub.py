"""A STUB of cloud-hypervisor that follows its OpenAPI spec (for tests only).

cloud-hypervisor has no Debian package, so it cannot boot guests in CI.
This stub stands in for its *process and API*: it takes the same command
line (``--api-socket path=``, ``--event-monitor path=``, ``--log-file``),
serves the REST API on the unix socket, follows the VM state machine
(including the gotchas: ``vm.shutdown`` leaves the state ``Created``; a
guest power-off ends the process), writes event-monitor events, and serves
the serial port in ``Socket`` mode, printing a boot marker and echoing what
it is sent.

Every request is validated against ``shared/specs/cloud-hypervisor.yaml``
(with unknown properties refused, so a misspelt field fails too); a request
that does not follow the spec is answered 400 and recorded, one JSON line
each, in ``<api socket>.violations``.

``CH_STUB_FAIL=vm.boot`` makes that endpoint fail with a 500 and an error
chain, as cloud-hypervisor does.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "plugins" / "ch" / "tests" / "data" / "cloud-hypervisor.yaml"
MARKER = "VIRSHLE-GUEST-READY"


def strict(schema):
    """The spec with additionalProperties: false on every object that lists its properties."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def load_spec(path: Path):
    import yaml
    from openapi_core import OpenAPI

    spec = json.loads(json.dumps(yaml.safe_load(path.read_text())))  # int response codes -> str
    return OpenAPI.from_dict(strict(spec))


class Stub:
    def __init__(self, api_path: str, events_path: str | None, spec_path: Path):
        self.api_path = api_path
        self.events_path = events_path
        self.openapi = load_spec(spec_path)
        self.violations = Path(api_path + ".violations")
        self.config = None
        self.state = None  # None: no VM; else Created/Running/Paused/Shutdown
        self.serial = None
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.fail = set(filter(None, os.environ.get("CH_STUB_FAIL", "").split(",")))
        self.event("vmm", "starting")

    # --- event monitor: pretty JSON objects separated by blank lines ---
    def event(self, source: str, name: str) -> None:
        if not self.events_path:
            return
        elapsed = time.monotonic() - self.started
        record = {"timestamp": {"secs": int(elapsed), "nanos": int(elapsed % 1 * 1e9)},
                  "source": source, "event": name, "properties": None}
        with open(self.events_path, "a") as handle:
            handle.write(json.dumps(record, indent=2) + "\n\n")

    def validate(self, method: str, path: str, body: bytes | None, content_type: str | None):
        from openapi_core.datatypes import RequestParameters

        class Request:
            host_url = "http://localhost"
            parameters = RequestParameters()
            full_url_pattern = "http://localhost" + path

        request = Request()
        request.path = path
        request.method = method.lower()
        request.body = body or None
        request.content_type = content_type or "application/json"
        try:
            self.openapi.validate_request(request)
            return None
        except Exception as exc:  # every kind of spec violation
            cause = exc.__cause__
            details = [f"{'.'.join(map(str, e.path))}: {e.message}"
                       for e in getattr(cause, "schema_errors", None) or []]
            message = f"{type(exc).__name__}: {exc}" + (f" {details}" if details else "")
            with open(self.violations, "a") as handle:
                handle.write(json.dumps({"method": method, "path": path, "error": message}) + "\n")
            return message

    def boot_serial(self) -> None:
        serial_config = (self.config or {}).get("serial") or {}
        if serial_config.get("mode") != "Socket":
            return
        self.serial = SerialPort(serial_config["socket"])
        self.serial.write(f"stub guest: booting {self.config['payload']}\r\n{MARKER}\r\n")

    def power_off(self) -> None:
        """A guest power-off: the VM shuts down and the VMM process ends."""
        self.state = "Shutdown"
        self.event("vm", "shutdown")
        self.event("vmm", "shutdown")
        if self.serial:
            self.serial.write("stub guest: power button, powering off\r\n")
            time.sleep(0.1)
        os._exit(0)

    def handle(self, method: str, endpoint: str, body: bytes | None):
        """Returns (status, json body or None)."""
        if endpoint in self.fail:
            return 500, [f"Error from the stub on {endpoint}", "injected failure"]
        with self.lock:
            if endpoint == "vmm.ping":
                return 200, {"version": "stub-v53.0", "pid": os.getpid(), "features": ["kvm"]}
            if endpoint == "vmm.shutdown":
                self.event("vmm", "shutdown")
                threading.Timer(0.05, lambda: os._exit(0)).start()
                return 204, None
            if endpoint == "vm.create":
                if self.state is not None:
                    return 400, ["VM is already created"]
                self.config = json.loads(body)
                self.state = "Created"
                return 204, None
            if self.state is None:
                return 404, ["VM is not created"]
            if endpoint == "vm.info":
                return 200, {"config": self.config, "state": self.state}
            if endpoint == "vm.boot":
                if self.state not in ("Created", "Shutdown"):
                    return 405, ["VM is already booted"]
                self.state = "Running"
                self.event("vm", "booting")
                self.boot_serial()
                self.event("vm", "booted")
                return 204, None
            if endpoint == "vm.power-button":
                if self.state != "Running":
                    return 405, ["VM is not running"]
                threading.Timer(0.3, self.power_off).start()  # the guest takes a moment
                return 204, None
            if endpoint == "vm.shutdown":
                if self.state not in ("Running", "Paused"):
                    return 405, ["VM is not booted"]
                self.state = "Created"  # the gotcha: not "Shutdown"
                self.event("vm", "shutdown")
                if self.serial:
                    self.serial.close()
                return 204, None
            if endpoint == "vm.delete":
                self.state, self.config = None, None
                self.event("vm", "deleted")
                return 204, None
            if endpoint == "vm.pause":
                if self.state != "Running":
                    return 405, ["VM is not running"]
                self.state = "Paused"
                self.event("vm", "pausing")
                self.event("vm", "paused")
                return 204, None
            if endpoint == "vm.resume":
                if self.state != "Paused":
                    return 405, ["VM is not paused"]
                self.state = "Running"
                self.event("vm", "resuming")
                self.event("vm", "resumed")
                return 204, None
            if endpoint == "vm.reboot":
                if self.state not in ("Running", "Paused"):
                    return 405, ["VM is not booted"]
                self.event("vm", "rebooting")
                if self.serial:  # the guest starts again on the same serial port
                    self.serial.write(f"stub guest: rebooting\r\n{MARKER}\r\n")
                self.event("vm", "rebooted")
                return 204, None
        return 404, [f"the stub does not implement {endpoint}"]


class SerialPort:
    """The serial port in Socket mode: output before a client connects is buffered (v53)."""

    def __init__(self, path: str):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.client = None
        self.pending = b""
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def write(self, text: str) -> None:
        with self.lock:
            if self.client is None:
                self.pending += text.encode()
                return
            try:
                self.client.sendall(text.encode())
            except OSError:
                self.client = None

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.client = client
                if self.pending:
                    client.sendall(self.pending)
                    self.pending = b""
            buffer = b""
            while True:
                try:
                    data = client.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self.write(f"stub-echo: {line.decode(errors='replace').strip()}\r\n")
            with self.lock:
                self.client = None

    def close(self) -> None:
        with self.lock:
            if self.client:
                self.client.close()
            self.server.close()


def make_handler(stub: Stub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def address_string(self):
            return "unix"

        def log_message(self, *args):
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            path = self.path.split("?")[0]
            problem = stub.validate(method, path, body, self.headers.get("Content-Type"))
            if problem:
                status, reply = 400, [f"request does not follow the cloud-hypervisor spec: {problem}"]
            else:
                status, reply = stub.handle(method, path.removeprefix("/api/v1/"), body)
            payload = b"" if reply is None else json.dumps(reply).encode()
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            self._serve("GET")

        def do_PUT(self):
            self._serve("PUT")

        def do_POST(self):
            self._serve("POST")

    return Handler


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cloud-hypervisor (stub)")
    parser.add_argument("--api-socket", required=True)
    parser.add_argument("--event-monitor")
    parser.add_argument("--log-file")
    parser.add_argument("--spec", default=str(SPEC))
    args = parser.parse_args(argv)
    api_path = args.api_socket.removeprefix("path=")
    events_path = args.event_monitor.removeprefix("path=") if args.event_monitor else None
    stub = Stub(api_path, events_path, Path(args.spec))
    try:
        os.unlink(api_path)
    except FileNotFoundError:
        pass
    server = Server(api_path, make_handler(stub))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
