"""Kea's control protocol: JSON commands over its unix socket or the control agent's HTTP."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

from virshle_core import logger


class KeaError(Exception):
    pass


class KeaClient:
    def __init__(self, url: str, timeout: float = 2.0, family: int = 4):
        self.url = url
        self.parts = urlsplit(url)
        self.timeout = timeout
        self.family = family

    def command(self, command: str, arguments: dict | None = None) -> dict:
        """Send one command; the answer map (``result``, ``text``, ``arguments``)."""
        request: dict = {"command": command}
        if arguments:
            request["arguments"] = arguments
        logger.trace("kea {}: {}", self.url, json.dumps(request))
        if self.parts.scheme == "unix":
            answer = self._unix(request)
        else:
            request["service"] = [f"dhcp{self.family}"]  # the control agent forwards it
            answer = self._http(request)
        if isinstance(answer, list):  # the agent answers one map per service
            answer = answer[0] if answer else {}
        if not isinstance(answer, dict):
            raise KeaError(f"unexpected answer to {command}: {answer!r:.200}")
        if answer.get("result") not in (0, 3):  # 3: empty
            raise KeaError(f"{command}: {answer.get('text') or answer}")
        return answer

    def _unix(self, request: dict) -> object:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.parts.path)
            sock.sendall(json.dumps(request).encode())
            data = b""
            while chunk := sock.recv(65536):  # one command per connection: read to EOF
                data += chunk
        except OSError as exc:
            raise KeaError(f"{self.parts.path}: {exc.strerror or exc}") from None
        finally:
            sock.close()
        try:
            return json.loads(data)
        except ValueError:
            raise KeaError(f"not JSON from {self.parts.path}: {data[:200]!r}") from None

    def _http(self, request: dict) -> object:
        import http.client

        scheme = "https" if self.parts.scheme == "https" else "http"
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        connection = cls(self.parts.hostname, self.parts.port, timeout=self.timeout)
        try:
            connection.request("POST", self.parts.path or "/", body=json.dumps(request),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise KeaError(f"{self.parts.hostname}:{self.parts.port}: {exc}") from None
        finally:
            connection.close()
        try:
            return json.loads(data)
        except ValueError:
            raise KeaError(f"not JSON (HTTP {response.status}): {data[:200]!r}") from None

    def leases(self) -> list[dict]:
        answer = self.command(f"lease{self.family}-get-all")
        return answer.get("arguments", {}).get("leases", [])

    def delete(self, lease: dict) -> None:
        arguments = {"ip-address": lease["ip-address"]}
        if self.family == 6:
            arguments["type"] = lease.get("type", "IA_NA")
        self.command(f"lease{self.family}-del", arguments)
