"""etcd v3 through its JSON gateway (``/v3/kv/range``, ``/v3/lease/grant``...), with the
standard library's HTTP client: a handful of calls, where an etcd client library would
bring gRPC and protobuf into every command that discovers nodes."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any


class EtcdError(Exception):
    """No endpoint answered, or one refused the request."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def prefix_end(prefix: str) -> str:
    """The key just past every key under ``prefix`` (etcd's range end for a prefix)."""
    data = bytearray(prefix.encode())
    data[-1] += 1
    return base64.b64encode(bytes(data)).decode()


class Etcd:
    def __init__(self, endpoints: list[str], timeout: float, ca: str | None = None,
                 cert: str | None = None, key: str | None = None):
        self.endpoints, self.timeout = list(endpoints), timeout
        self.context = None
        if any(endpoint.startswith("https://") for endpoint in endpoints):
            self.context = ssl.create_default_context(cafile=ca)
            if cert:
                self.context.load_cert_chain(cert, key)

    def call(self, path: str, body: dict) -> dict:
        """POST ``body`` to ``/v3/<path>`` of the first endpoint that answers."""
        data = json.dumps(body).encode()
        problems = []
        for endpoint in self.endpoints:
            request = urllib.request.Request(f"{endpoint.rstrip('/')}/v3/{path}", data=data,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout,
                                            context=self.context) as reply:
                    return json.loads(reply.read() or b"{}")
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:200]
                raise EtcdError(f"{endpoint} refused {path}: HTTP {exc.code} {detail}") from None
            except (OSError, ValueError) as exc:
                problems.append(f"{endpoint}: {getattr(exc, 'reason', exc)}")
        raise EtcdError("; ".join(problems) or "no endpoint")

    def entries(self, prefix: str) -> list[tuple[str, dict]]:
        """Every key under ``prefix`` whose value is a JSON object, with it."""
        reply = self.call("kv/range", {"key": _b64(prefix), "range_end": prefix_end(prefix)})
        found = []
        for kv in reply.get("kvs", []):
            try:
                value = json.loads(base64.b64decode(kv.get("value", "")))
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append((base64.b64decode(kv["key"]).decode(errors="replace"), value))
        return found

    def grant(self, ttl: int) -> str:
        return str(self.call("lease/grant", {"TTL": ttl})["ID"])

    def keep_alive(self, lease: str) -> int:
        """The lease's TTL once renewed; 0 when it is gone (expired or revoked)."""
        reply = self.call("lease/keepalive", {"ID": lease})
        return int((reply.get("result") or {}).get("TTL") or 0)

    def put(self, key: str, value: dict[str, Any], lease: str) -> None:
        self.call("kv/put", {"key": _b64(key), "value": _b64(json.dumps(value)), "lease": lease})

    def revoke(self, lease: str) -> None:
        self.call("lease/revoke", {"ID": lease})
