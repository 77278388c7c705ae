"""Prometheus metrics of the node and its VMs: ``GET /api/v1/x/metrics``, and with
``[metrics] listen`` a TCP port for Prometheus to scrape.

In the text exposition format, written by ``prometheus_client``:

- the node (label ``node``): cpus, memory and disk, each total, used and reserved by
  VMs, the ``[host.limits]`` ratios, saturation, VMs by state; the API's requests by
  route (a counter and a latency histogram); the time each plugin's hook
  implementations take (a histogram by hook and plugin); the daemon's own process;
- each VM (labels ``vm``, ``uuid``, ``node``): its state, vcpus and memory; while it
  runs, its VMM's cpu time and RSS and its disks' bytes and operations (the hypervisor
  plugin's ``virshle_vm_stats``: QMP ``query-blockstats`` for QEMU), and its NICs'
  bytes and packets (the sysfs counters of its tap or macvtap).

A scrape never asks a guest: VM counters are sampled in a worker thread at most once
per ``interval`` seconds and kept; states come from the node's store, which the state
tracker keeps. The configuration::

    [metrics]
    listen = "127.0.0.1:9177"   # off by default; a scrape target of Prometheus
    interval = 15               # seconds: at most one sample of the VMs' counters each

A ``listen`` address that is not loopback is refused unless ``public = true``: the
metrics name every VM of the node, and the port has no authentication.
"""

from __future__ import annotations

from virshle_core import hookimpl

from .config import NAME, MetricsConfig, config_of


@hookimpl
def virshle_config_sections(register):
    register(NAME, MetricsConfig)


@hookimpl
def virshle_routes():
    from virshle_core.models import ApiRoute

    async def exposition(request, node):  # prometheus_client comes with the first scrape
        from .work import exposition

        return await exposition(request, node)

    return [ApiRoute("GET", "", exposition, "Prometheus metrics of the node and its VMs, in "
                     "the text exposition format.", content_type="text/plain")]


@hookimpl
def virshle_services(node):
    from virshle_core.models import Service

    from .tally import watcher

    services = [Service("metrics-watch", watcher)]
    if config_of(node).listen:
        async def listener(node):
            from .work import listener

            await listener(node)

        services.append(Service("metrics-listen", listener))
    return services
