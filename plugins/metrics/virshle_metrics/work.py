"""The metrics plugin's exposition, in the daemon only, imported at the first scrape: the
sample of the node and its VMs, the counts of ``tally.py``, and prometheus_client's text."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE, generate_latest

from virshle_core import logger

from . import tally

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # the daemon's own process_* figures

RUNS = ("running", "paused")
NIC_COUNTERS = (("receive_bytes", "rx_bytes"), ("transmit_bytes", "tx_bytes"),
                ("receive_packets", "rx_packets"), ("transmit_packets", "tx_packets"))


class Sampler:
    """The last sample of the node and its VMs, taken again at most once per interval."""

    def __init__(self) -> None:
        self.sample: dict[str, Any] | None = None
        self.taken = 0.0
        self.lock = asyncio.Lock()
        self.counters: dict[str, dict] = {}  # a VM's last counters, kept while a sample fails

    async def fresh(self, node) -> dict[str, Any]:
        from .config import config_of

        async with self.lock:
            if self.sample is None or time.monotonic() - self.taken >= config_of(node).interval:
                self.sample = await node.run(self.take, node)
                self.taken = time.monotonic()
            return self.sample

    def take(self, node) -> dict[str, Any]:
        """The node's figures and each VM's (in a worker thread)."""
        from virshle_core.daemon.nodeinfo import host_info
        from virshle_core.hooks import plugins

        vms = node.store.all()
        running = {vm.uuid for vm in vms if vm.state in RUNS}
        for uuid in set(self.counters) - running:
            del self.counters[uuid]
        for vm in vms:
            if vm.uuid not in running:
                continue
            try:
                stats = plugins().vm_stats(vm=vm, node=node.context)
            except Exception as exc:  # a VMM that stopped meanwhile, a QMP that timed out
                logger.debug("metrics: no stats for VM {}: {}", vm.name, exc)
                stats = None
            if stats is not None:
                self.counters[vm.uuid] = {"stats": stats, "nics": nic_counters(vm)}
        return {"info": host_info(node.config, node.store), "vms": vms,
                "counters": dict(self.counters)}


SAMPLER = Sampler()


def nic_counters(vm) -> dict[str, dict[str, int]]:
    """Each NIC's counters, read from the sysfs of its tap or macvtap (host side: what the
    host received is what the guest sent)."""
    found = {}
    for net in vm.nets:
        if not net.ifname:
            continue
        base = f"/sys/class/net/{net.ifname}/statistics"
        try:
            found[net.name] = {ours: int(open(f"{base}/{theirs}").read())
                               for ours, theirs in NIC_COUNTERS}
        except (OSError, ValueError):
            continue
    return found


class NodeCollector:
    """The sample, as metric families (read at each scrape, never computed by it)."""

    def __init__(self) -> None:
        self.sample: dict[str, Any] | None = None
        self.node = ""

    def collect(self):
        yield from counted_families()
        if self.sample is None:
            return
        yield from node_families(self.node, self.sample["info"])
        yield from vm_families(self.node, self.sample["vms"], self.sample["counters"])


def counted_families() -> list:
    """What ``tally.py`` counted: requests by route, and the time of requests and hooks."""
    requests = CounterMetricFamily("virshle_http_requests", "Requests the node's API "
                                   "answered, by route and status.",
                                   labels=["node", "method", "route", "status"])
    for labels, count in list(tally.REQUESTS.items()):
        requests.add_metric(list(labels), count)
    families = [requests]
    for name, doc, labels, kept in (
            ("virshle_http_request_duration_seconds", "Time the node's API took to answer, by "
             "route (a stream: until it ended).", ["node", "method", "route"], tally.REQUEST_TIME),
            ("virshle_hook_duration_seconds", "Time each plugin's implementation of a hook "
             "took, by hook and plugin.", ["node", "hook", "plugin"], tally.HOOK_TIME)):
        family = HistogramMetricFamily(name, doc, labels=labels)
        for values, buckets, total in kept.cumulative():
            family.add_metric(list(values), buckets, total)
        families.append(family)
    return families


COLLECTOR = NodeCollector()
REGISTRY.register(COLLECTOR)


def node_families(node: str, info: dict) -> list:
    def gauge(name: str, doc: str, value: float, labels: dict | None = None) -> Any:
        family = GaugeMetricFamily(name, doc, labels=["node", *(labels or {})])
        family.add_metric([node, *(labels or {}).values()], value)
        return family

    cpu, ram, disk = info["cpu"], info["ram"], info["disk"]
    families = [
        gauge("virshle_node_cpus", "The host's cpus.", cpu["total"]),
        gauge("virshle_node_cpus_used", "Cpus the host uses now (its load, in cpus).",
              cpu["used"]),
        gauge("virshle_node_vcpus_reserved", "Vcpus the node's VMs reserve ([host.limits]).",
              cpu["reserved"]),
    ]
    for resource, figures in (("memory", ram), ("disk", disk)):
        for kind in ("total", "used", "reserved"):
            families.append(gauge(f"virshle_node_{resource}_{kind}_bytes",
                                  f"The host's {resource}: {kind}" + (
                                      " by the node's VMs ([host.limits])."
                                      if kind == "reserved" else "."), figures[kind]))
    limit = GaugeMetricFamily("virshle_node_limit_ratio", "What [host.limits] lets VMs "
                              "reserve, as a share of the host (3 = 300%).",
                              labels=["node", "resource"])
    for resource, figures in (("cpu", cpu), ("memory", ram), ("disk", disk)):
        limit.add_metric([node, resource], figures["limit_pct"] / 100)
    families.append(limit)
    families.append(gauge("virshle_node_saturation", "How full the node is against its "
                          "limits, weighted (1: full).", info["saturation"]))
    by_state = GaugeMetricFamily("virshle_node_vms", "The node's VMs, by state.",
                                 labels=["node", "state"])
    from virshle_core.models import VM_STATES

    for state in VM_STATES:
        by_state.add_metric([node, state], info["vms"]["by_state"].get(state, 0))
    families.append(by_state)
    return families


def vm_families(node: str, vms: list, counters: dict) -> list:
    from virshle_core.models import VM_STATES

    labels = ["vm", "uuid", "node"]
    state = GaugeMetricFamily("virshle_vm_state", "1 for the state the VM is in.",
                              labels=[*labels, "state"])
    vcpus = GaugeMetricFamily("virshle_vm_vcpus", "The VM's vcpus.", labels=labels)
    memory = GaugeMetricFamily("virshle_vm_memory_bytes", "The VM's memory.", labels=labels)
    cpu = CounterMetricFamily("virshle_vm_cpu_seconds", "Cpu time its VMM used (user and "
                              "system, every vcpu and the VMM's own threads).", labels=labels)
    rss = GaugeMetricFamily("virshle_vm_resident_memory_bytes", "Resident memory of its VMM.",
                            labels=labels)
    disk = {name: CounterMetricFamily(f"virshle_vm_disk_{name}", doc, labels=[*labels, "disk"])
            for name, doc in (("read_bytes", "Bytes the guest read from a disk."),
                              ("written_bytes", "Bytes the guest wrote to a disk."),
                              ("reads", "Read operations of the guest on a disk."),
                              ("writes", "Write operations of the guest on a disk."))}
    nic = {name: CounterMetricFamily(f"virshle_vm_network_{name}", f"{what} of a NIC, as its "
                                     "host interface counts them.", labels=[*labels, "net"])
           for name, what in (("receive_bytes", "Bytes the guest sent out"),
                              ("transmit_bytes", "Bytes delivered to the guest"),
                              ("receive_packets", "Packets the guest sent out"),
                              ("transmit_packets", "Packets delivered to the guest"))}
    for vm in vms:
        values = [vm.name, vm.uuid, node]
        for name in VM_STATES:
            state.add_metric([*values, name], 1 if vm.state == name else 0)
        vcpus.add_metric(values, vm.vcpu)
        memory.add_metric(values, vm.vram)
        sampled = counters.get(vm.uuid)
        if sampled is None:
            continue
        stats = sampled["stats"]
        cpu.add_metric(values, stats.cpu_seconds)
        rss.add_metric(values, stats.rss_bytes)
        for entry in stats.disks:
            for name in disk:
                disk[name].add_metric([*values, entry["name"]], entry.get(name, 0))
        for net, figures in sampled["nics"].items():
            for name, value in figures.items():
                nic[name].add_metric([*values, net], value)
    return [state, vcpus, memory, cpu, rss, *disk.values(), *nic.values()]


async def exposition(request, node):
    """``GET /api/v1/x/metrics``."""
    from virshle_core.models import Reply

    return Reply(await render(node), content_type=CONTENT_TYPE)


async def render(node) -> bytes:
    COLLECTOR.node = node.name
    COLLECTOR.sample = await SAMPLER.fresh(node)
    return generate_latest(REGISTRY)


# --- a port for Prometheus ---------------------------------------------------------------


async def listener(node) -> None:
    """``[metrics] listen``: the exposition on a TCP port, at ``/metrics`` (and ``/``)."""
    from virshle_core.errors import ConfigError

    from .config import config_of

    config = config_of(node)
    host, _, port = config.listen.rpartition(":")
    host = host.strip("[]")
    if not config.public and not _loopback(host):
        raise ConfigError(f"[metrics] listen = {config.listen!r} is not a loopback address; "
                          "the metrics name every VM and the port has no authentication",
                          "Listen on 127.0.0.1 (and let Prometheus reach it through a proxy "
                          "or a tunnel), or set [metrics] public = true.")
    server = await asyncio.start_server(lambda r, w: _serve(r, w, node), host, int(port))
    logger.info("metrics on http://{}/metrics", config.listen)
    try:
        async with server:
            await server.serve_forever()
    finally:
        server.close()


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, node) -> None:
    """One HTTP/1.1 connection, with h11: GET /metrics answered, anything else 404."""
    import h11

    connection = h11.Connection(h11.SERVER)
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65536), 30)
                connection.receive_data(data)
                if not data:
                    return
                continue
            if not isinstance(event, h11.Request):
                if isinstance(event, h11.ConnectionClosed):
                    return
                continue
            path = event.target.decode().partition("?")[0]
            if event.method in (b"GET", b"HEAD") and path in ("/metrics", "/"):
                body, status = await render(node), 200
                kind = CONTENT_TYPE
            else:
                body, status, kind = b"only GET /metrics here\n", 404, "text/plain"
            while not isinstance(ending := connection.next_event(), h11.EndOfMessage):
                if ending is h11.NEED_DATA:  # a body nobody asked for: read past it
                    data = await asyncio.wait_for(reader.read(65536), 30)
                    if not data:
                        return
                    connection.receive_data(data)
            writer.write(connection.send(h11.Response(status_code=status, headers=[
                ("Content-Type", kind), ("Content-Length", str(len(body)))])))
            if event.method != b"HEAD":
                writer.write(connection.send(h11.Data(data=body)))
            writer.write(connection.send(h11.EndOfMessage()))
            await writer.drain()
            if connection.our_state is h11.MUST_CLOSE:
                return
            connection.start_next_cycle()
    except (OSError, asyncio.TimeoutError, h11.ProtocolError):
        return
    finally:
        writer.close()
