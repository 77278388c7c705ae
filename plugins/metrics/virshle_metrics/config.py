"""``[metrics]``: the plugin's table."""

from __future__ import annotations

import attrs

from virshle_core.config import field_check

NAME = "metrics"


def listen_problem(value: str | None) -> str | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f'"{value}" must be HOST:PORT, as "127.0.0.1:9177"'
    return None


@attrs.define
class MetricsConfig:
    """``[metrics]``."""

    listen: str | None = attrs.field(default=None, validator=field_check(listen_problem))
    """``HOST:PORT`` of a port Prometheus scrapes; None: only the API's route."""
    interval: float = 15.0
    """Seconds: the VMs' counters are sampled at most once in each."""
    public: bool = False
    """Whether ``listen`` may be an address other than loopback."""


def config_of(node) -> MetricsConfig:
    return node.config.section(NAME) or MetricsConfig()
