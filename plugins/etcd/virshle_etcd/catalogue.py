"""The catalogue's two sides: a node registering itself (a daemon service), and a command
line reading the entries (``virshle_discover_nodes``), with its cache for when etcd is
down."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path

from virshle_core import logger

from .config import EtcdConfig, config_of
from .etcd import EtcdError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


# --- a command line reads it ---------------------------------------------------------------


def discover(etcd: EtcdConfig) -> list:
    """The catalogue's nodes; etcd down: its cached copy, said so, or nothing."""
    from virshle_core.cli.render import warn

    cache = _cache_path(etcd)
    where = ", ".join(etcd.endpoints)
    cached = False
    try:
        listed = [value for _, value in etcd.client().entries(etcd.prefix)]
        _write_cache(cache, listed)
    except EtcdError as exc:
        age, listed = _read_cache(cache)
        if listed is None or age > etcd.cache_max_age:
            warn(f"etcd ({where}) does not answer ({exc}), and there is no catalogue cached in "
                 f"the last {etcd.cache_max_age:g} s: only the [[node]] entries are used")
            return []
        warn(f"etcd ({where}) does not answer ({exc}): using its catalogue cached "
             f"{age:.0f} s ago")
        cached = True
    return nodes_of(listed, etcd, cached)


def nodes_of(listed: list[dict], etcd: EtcdConfig, cached: bool) -> list:
    """The entries as nodes: one per node id, names checked, ``unix://`` only if allowed."""
    from virshle_core.cli.render import warn
    from virshle_core.config import DiscoveredNode

    nodes, ids = [], set()
    for value in listed:
        name, url = str(value.get("name") or ""), str(value.get("url") or "")
        if not NAME_PATTERN.match(name) or not url.startswith(("ssh://", "unix://")):
            warn(f"a catalogue entry is refused: name {name[:64]!r}, url {url[:120]!r}")
            continue
        if url.startswith("unix://") and not etcd.allow_local:
            warn(f"catalogue entry {name!r} is refused: {url} is a unix:// socket, and "
                 "[discovery.etcd] allow_local is false")
            continue
        node_id = value.get("id") or url
        if node_id in ids:
            continue  # the same daemon registered twice: one entry
        ids.add(node_id)
        try:
            weight = max(0, int(value.get("weight", 1)))
        except (TypeError, ValueError):
            weight = 1
        labels = value.get("labels") if isinstance(value.get("labels"), dict) else {}
        nodes.append(DiscoveredNode(
            name=name, url=url, weight=weight, labels={str(k): str(v) for k, v in labels.items()},
            source="etcd", id=str(node_id), seen=value.get("seen"), cached=cached,
            cordoned=bool(value.get("cordoned"))))
    return nodes


def _cache_path(etcd: EtcdConfig) -> Path:
    import hashlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    name = hashlib.sha256("\n".join([*etcd.endpoints, etcd.prefix]).encode()).hexdigest()[:16]
    return Path(base) / "virshle" / f"catalogue-{name}.json"


def _write_cache(path: Path, listed: list[dict]) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps({"time": time.time(), "entries": listed}))
        partial.replace(path)
    except OSError:
        pass  # no cache: the next failure has nothing to fall back on, and says so


def _read_cache(path: Path) -> tuple[float, list[dict] | None]:
    try:
        kept = json.loads(path.read_text())
        return time.time() - float(kept["time"]), list(kept["entries"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0, None


# --- a node registers in it --------------------------------------------------------------


async def register(node) -> None:
    """Keep this node's entry while the daemon runs: a lease of ``ttl`` seconds renewed
    every third of it, the entry written again with each renewal (``seen``, the cordon);
    the lease revoked when the daemon stops."""
    import socket

    etcd = config_of(node.config)
    url = node.config.host.advertise_url
    if not url:
        logger.warning("[discovery.etcd] is set but [host] advertise_url is not: this node "
                       "does not register (say how command lines reach it, as "
                       "ssh://user@host:22/var/lib/virshle/virshle.sock)")
        return
    client = etcd.client()
    host = node.config.host.name
    name = host if host != "default" else socket.gethostname().split(".")[0]
    key = f"{etcd.prefix}{node.id or name}"
    lease, failing = None, False
    try:
        while True:
            try:
                if lease is None or await node.run(client.keep_alive, lease) == 0:
                    lease = await node.run(client.grant, etcd.ttl)
                await node.run(client.put, key, await node.run(_entry, node, name, url, etcd),
                               lease)
                if failing:
                    logger.info("etcd answers again: node {} is in the catalogue", name)
                failing = False
            except EtcdError as exc:
                if not failing:
                    logger.warning("etcd: node {} cannot register ({}); trying again", name, exc)
                failing = True
            await asyncio.sleep(max(0.5, etcd.ttl / 3))
    finally:
        if lease is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(client.revoke, lease), etcd.timeout)
            except (EtcdError, asyncio.TimeoutError, OSError):
                pass  # it expires by itself within ttl


def _entry(node, name: str, url: str, etcd: EtcdConfig) -> dict:
    from virshle_core.daemon.nodeinfo import cordon_of

    cordon = cordon_of(node.store)
    return {"name": name, "url": url, "id": node.id, "weight": etcd.weight,
            "labels": etcd.labels, "seen": time.time(), "cordoned": cordon.cordoned,
            "reason": cordon.reason or ""}
