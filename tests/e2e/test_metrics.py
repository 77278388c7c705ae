"""Prometheus really scrapes a node (issue 24, item 1): the metrics plugin's exposition on
the API's route and on its TCP port, read by Debian's prometheus, started by the test on
loopback, and checked by promtool."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from tests.support import GUEST_DIR, Daemon, exchange, free_port, wait_for, write_guest_config

pytestmark = [pytest.mark.e2e]
for tool in ("prometheus", "promtool", "qemu-system-x86_64"):
    if not shutil.which(tool):
        pytestmark.append(pytest.mark.skip(reason=f"{tool} is not installed"))


@pytest.fixture(scope="module")
def scraped(tmp_path_factory, guest):
    directory = tmp_path_factory.mktemp("metrics")
    port = free_port()
    config = write_guest_config(directory, GUEST_DIR, extra=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\ninterval = 1\n')
    node = Daemon(directory, config)
    node.start()
    prometheus = None
    try:
        assert node.cli("vm", "create", "-t", "tiny", "--name", "counted").returncode == 0
        assert node.cli("vm", "start", "counted").returncode == 0
        web = free_port()
        (directory / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: virshle\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{port}']\n")
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={directory / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}"],
            stdout=subprocess.DEVNULL, stderr=open(directory / "prometheus.log", "wb"))
        yield node, port, web, directory
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(20)
        node.close()


def query(web: int, expression: str) -> list:
    url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return json.load(reply)["data"]["result"]
    except OSError:
        return []


def test_prometheus_scrapes_a_growing_cpu_time(scraped):
    node, port, web, directory = scraped
    expression = 'virshle_vm_cpu_seconds_total{vm="counted"}'
    first = wait_for(lambda: query(web, expression), timeout=60, every=0.5,
                     what=f"prometheus to scrape {expression}\n"
                     + (directory / "prometheus.log").read_text()[-2000:])
    (series,) = first
    assert series["metric"]["node"] == "default" and len(series["metric"]["uuid"]) == 36
    before = float(series["value"][1])
    time.sleep(2.5)  # two scrape intervals (and two sampling intervals) later
    after = float(query(web, expression)[0]["value"][1])
    assert after > before > 0
    up = query(web, 'up{job="virshle"}')
    assert up and up[0]["value"][1] == "1"
    assert query(web, 'virshle_node_vms{state="running"}')[0]["value"][1] == "1"


def test_the_exposition_passes_promtool_and_says_what_it_counts(scraped):
    node, port, web, directory = scraped
    status, kind, body = exchange(node, "GET", "/api/v1/x/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4"), kind
    checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = body.decode()
    for name in ("virshle_node_cpus", "virshle_node_memory_reserved_bytes", "virshle_node_saturation",
                 "virshle_node_vms", "virshle_vm_state", "virshle_vm_resident_memory_bytes",
                 "virshle_vm_disk_read_bytes_total", "virshle_http_requests_total",
                 "virshle_http_request_duration_seconds_bucket", "virshle_hook_duration_seconds_bucket",
                 "process_resident_memory_bytes"):
        assert f"\n{name}" in text, name
    assert '# TYPE virshle_vm_cpu_seconds_total counter' in text or \
        '# TYPE virshle_vm_cpu_seconds counter' in text
    assert 'virshle_vm_disk_read_bytes_total{disk="os",node="default",uuid=' in text
    assert 'hook="virshle_vm_stats",node="default",plugin="qemu"' in text
    assert 'route="/api/v1/vms/{ref}/start"' in text  # the route, not each VM's path
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert b"virshle_vm_cpu_seconds_total" in reply.read()


def test_a_scrape_does_not_sample_again_within_the_interval(scraped):
    """Counters are sampled at most once per interval: two scrapes in quick succession read
    the same sample (the cpu time does not move between them)."""
    node, *_ = scraped
    def cpu(body: bytes) -> str:
        return next(line for line in body.decode().splitlines()
                    if line.startswith("virshle_vm_cpu_seconds_total{"))
    time.sleep(1.1)
    first = exchange(node, "GET", "/api/v1/x/metrics")[2]
    second = exchange(node, "GET", "/api/v1/x/metrics")[2]
    assert cpu(first) == cpu(second)


def test_a_public_address_is_refused_without_public(tmp_path, guest):
    port = free_port()
    config = write_guest_config(tmp_path, GUEST_DIR,
                                extra=f'\n[metrics]\nlisten = "0.0.0.0:{port}"\n')
    node = Daemon(tmp_path, config)
    node.start()
    try:
        wait_for(lambda: "is not a loopback address" in node.log_path.read_text(), timeout=10,
                 what="the refusal in the daemon's log")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert node.cli("vm", "ls").returncode == 0  # the daemon goes on
    finally:
        node.close()


def test_hook_virshle_vm_stats(scraped):
    """QEMU's plugin answers for its running guest: the VMM's cpu time and RSS, and the I/O
    of its disk ``os`` by name (QMP query-blockstats, matched through query-block)."""
    import re

    node, *_ = scraped
    text = exchange(node, "GET", "/api/v1/x/metrics")[2].decode()

    def value(name: str, **labels: str) -> float:
        wanted = "".join(f'(?=[^}}]*{k}="{v}")' for k, v in labels.items())
        found = re.search(rf"^{name}{{{wanted}[^}}]*}} (\S+)$", text, re.M)
        assert found, (name, labels)
        return float(found[1])

    assert value("virshle_vm_resident_memory_bytes", vm="counted") > 10 * 1024 * 1024
    assert value("virshle_vm_disk_reads_total", vm="counted", disk="os") > 0  # the boot read it
    assert value("virshle_vm_cpu_seconds_total", vm="counted") > 0
    assert value("virshle_vm_state", vm="counted", state="running") == 1
