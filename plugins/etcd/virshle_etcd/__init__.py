"""Nodes found through a catalogue on etcd: ``[discovery.etcd]``.

Each node stays the only authority on its own VMs; the catalogue only says where the
nodes are. On a node, ``virshle node serve`` registers ``[host] advertise_url`` (how the
command lines reach it: ``ssh://user@host:22/var/lib/virshle/virshle.sock``) under
``<prefix><node id>``, on a lease of ``ttl`` seconds that a daemon service renews, with
the node's name, weight, labels, cordon and when it was last seen. A node that dies
drops out when its lease expires; one that stops cleanly revokes it at once.

A command line with the same table lists the catalogue's nodes beside its ``[[node]]``
entries (``virshle_discover_nodes``): ``node ls``, ``vm ls``, placement, ``vm
migrate``, ``node drain`` and ``virshle web`` work over them. When etcd does not answer
within ``timeout`` it says so in one line and uses the catalogue it cached last, if not
older than ``cache_max_age``, saying that it is cached. An entry only says where a node
is: an ``ssh://`` host key is verified as for a static entry, and a ``unix://`` entry is
refused unless ``allow_local = true``. TLS: ``ca``, and ``cert`` with ``key`` for an
etcd that asks for client certificates.

It speaks etcd's JSON gateway with the standard library (``etcd.py``).
"""

from __future__ import annotations

from virshle_core import hookimpl

from .config import NAME, EtcdConfig, config_of


@hookimpl
def virshle_config_sections(register):
    register(NAME, EtcdConfig)


@hookimpl
def virshle_discover_nodes(config, probe):
    etcd = config_of(config)
    if not etcd.endpoints:
        return None
    if probe:
        return []
    from .catalogue import discover

    return discover(etcd)


@hookimpl
def virshle_services(node):
    etcd = config_of(node.config)
    if not etcd.endpoints:
        return None
    from virshle_core.models import Service

    from .catalogue import register

    return [Service("etcd-register", register)]
