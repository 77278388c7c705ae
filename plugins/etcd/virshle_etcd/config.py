"""``[discovery.etcd]``: where the catalogue is, and how this node registers in it."""

from __future__ import annotations

import attrs

from virshle_core.config import field_check

NAME = "discovery.etcd"


def endpoints_problem(value: list[str]) -> str | None:
    for endpoint in value:
        if not endpoint.startswith(("http://", "https://")):
            return f'"{endpoint}" must start with http:// or https://'
    return None


@attrs.define
class EtcdConfig:
    """``[discovery.etcd]``."""

    endpoints: list[str] = attrs.field(factory=list, validator=field_check(endpoints_problem))
    """etcd's client URLs (its JSON gateway); none: no catalogue."""
    prefix: str = "/virshle/nodes/"
    """The keys of the catalogue: one per node, ``<prefix><node id>``."""
    ttl: int = 10
    """Seconds a node stays listed after its daemon stops renewing its lease."""
    timeout: float = 2.0
    """Seconds the command line waits for etcd before it falls back to its cache."""
    cache_max_age: float = 300.0
    """Seconds a cached catalogue is used for when etcd does not answer."""
    allow_local: bool = False
    """Whether an entry may be a ``unix://`` URL (a catalogue of this host's own nodes)."""
    ca: str | None = None
    """The CA that signed etcd's certificate (https endpoints)."""
    cert: str | None = None
    """A client certificate, for an etcd run with ``--client-cert-auth``."""
    key: str | None = None
    """The client certificate's private key."""
    weight: int = 1
    """This node's weight, as it registers (the balancer's, as ``[[node]] weight``)."""
    labels: dict[str, str] = attrs.Factory(dict)
    """This node's labels, as it registers (``--selector`` targets them)."""

    def client(self):
        from .etcd import Etcd

        return Etcd(self.endpoints, self.timeout, self.ca, self.cert, self.key)


def config_of(config) -> EtcdConfig:
    return config.section(NAME) or EtcdConfig()
