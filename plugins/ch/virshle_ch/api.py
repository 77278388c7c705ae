"""A client of cloud-hypervisor's REST API (``/api/v1`` on its unix socket).

Requests and bodies follow cloud-hypervisor's OpenAPI document; the tests
validate every request this module sends against it.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from virshle_core import VirshleError

ROOT = "/api/v1"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class ChApiError(VirshleError):
    code = "ch_api"


class ChApi:
    def __init__(self, socket_path: str, timeout: float = 10.0):
        self.socket_path = socket_path
        self.timeout = timeout

    def request(self, method: str, endpoint: str, body: Any = None) -> Any:
        connection = _UnixConnection(self.socket_path, self.timeout)
        try:
            payload = None if body is None else json.dumps(body)
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, f"{ROOT}/{endpoint}", body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ChApiError(f"cloud-hypervisor API {endpoint}: {exc}") from None
        finally:
            connection.close()
        if response.status >= 300:
            # errors are a JSON array of strings: the error chain
            try:
                chain = json.loads(data)
                detail = ": ".join(chain) if isinstance(chain, list) else str(chain)
            except ValueError:
                detail = data.decode(errors="replace").strip() or response.reason
            raise ChApiError(f"cloud-hypervisor {endpoint} failed (HTTP {response.status}): {detail}")
        return json.loads(data) if data else None

    def ping(self) -> dict:
        return self.request("GET", "vmm.ping")

    def info(self) -> dict:
        return self.request("GET", "vm.info")

    def create(self, config: dict) -> None:
        self.request("PUT", "vm.create", config)

    def boot(self) -> None:
        self.request("PUT", "vm.boot")

    def pause(self) -> None:
        self.request("PUT", "vm.pause")

    def resume(self) -> None:
        self.request("PUT", "vm.resume")

    def reboot(self) -> None:
        self.request("PUT", "vm.reboot")

    def power_button(self) -> None:
        self.request("PUT", "vm.power-button")

    def shutdown(self) -> None:
        self.request("PUT", "vm.shutdown")

    def delete(self) -> None:
        self.request("PUT", "vm.delete")

    def shutdown_vmm(self) -> None:
        self.request("PUT", "vmm.shutdown")
