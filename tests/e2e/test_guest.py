"""A real guest (issue 9): Debian 12, UEFI, cloud-init, provisioned through the NoCloud seed.

The image is built by ``scripts/build-debian-image.sh`` (cached outside the
checkout). Two VMs boot at once on a node whose OVS bridge and Kea live in a
namespace; their boots under TCG take a minute or two, so every assertion
shares them. Parametrised over the hypervisors installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import attrs
import pytest

from virshle_core.testing.netlab import Netns, bridge_with_dhcp, run, tear_down
from tests.support import REPO, Daemon, installed_hypervisors, network_config, short_dir, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
for tool in ("ovs-vsctl", "kea-dhcp4", "qemu-system-x86_64", "ssh", "mmdebstrap"):
    if tool != "mmdebstrap" and not shutil.which(tool):
        pytestmark.append(pytest.mark.skip(reason=f"{tool} is not installed"))

BOOT_TIMEOUT = 420  # TCG, two guests on two cores
MARKER = "/var/tmp/virshle-runcmd-ran"


def debian_image() -> Path:
    built = subprocess.run([str(REPO / "scripts" / "build-debian-image.sh")], capture_output=True,
                           text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    return Path(built.stdout.strip().splitlines()[-1])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@attrs.define
class Guests:
    ns: Netns
    daemon: Daemon
    key: Path
    image: Path
    image_sha256: str
    hypervisor: str
    kea: object = None

    def ssh(self, ip: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.ns.exec(["ssh", "-i", str(self.key), "-o", "StrictHostKeyChecking=no",
                             "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
                             "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"debian@{ip}", *command],
                            check=False, timeout=timeout)

    def vm(self, name: str) -> dict:
        result = self.daemon.cli("vm", "info", "--name", name, "--json")
        assert result.returncode == 0, result.stderr
        return result.json()

    def address(self, name: str) -> str:
        return wait_for(lambda: (self.vm(name)["ips"] or [None])[0], timeout=BOOT_TIMEOUT, every=2,
                        what=f"a lease for {name}\n{self.console(name)}")

    def ssh_ready(self, name: str) -> str:
        """The address at which ``name`` answers ssh (its lease may change while it boots:
        a clone asks again for an address of its own)."""
        self.address(name)

        def answering() -> str | None:
            return next((ip for ip in self.vm(name)["ips"] if self.ssh(ip, "true").returncode == 0),
                        None)

        return wait_for(answering, timeout=BOOT_TIMEOUT, every=3,
                        what=f"ssh on {name} ({self.vm(name)['ips']})\n{self.console(name)}")

    def console(self, name: str) -> str:
        log = self.daemon.root / "vm" / self.vm(name)["uuid"] / "console.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else "(no console log)"


CH_FIRMWARE = [os.environ.get("VIRSHLE_CH_FIRMWARE", ""), "/usr/share/cloud-hypervisor/CLOUDHV.fd",
               "/usr/local/share/cloud-hypervisor/CLOUDHV.fd"]


def hypervisor_table(hypervisor: str) -> str:
    """What the hypervisor needs to boot a UEFI disk: cloud-hypervisor its own firmware."""
    if hypervisor != "ch":
        return ""
    firmware = next((path for path in CH_FIRMWARE if path and Path(path).is_file()), None)
    if firmware is None:
        pytest.skip("cloud-hypervisor boots UEFI disks with CLOUDHV.fd: set VIRSHLE_CH_FIRMWARE")
    return f'\n[ch]\nfirmware = "{firmware}"\n'


@pytest.fixture(scope="module", params=installed_hypervisors())
def guests(request):
    extra = hypervisor_table(request.param)
    image = debian_image()
    before = sha256_of(image)
    tag = f"{os.getpid() % 100000}"
    ns = Netns(f"vsh-deb{tag}")
    started: list = []
    daemon = None
    try:
        base = short_dir("deb")
        ovs, kea = bridge_with_dhcp(ns, base, "10.44.0.1/24", "10.44.0.100 - 10.44.0.199", started)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", base / "id_ed25519"])
        user_data = base / "user-data"
        user_data.write_text(textwrap.dedent(f"""\
            #cloud-config
            runcmd:
              - [touch, {MARKER}]
            """))
        directory = short_dir("debn")
        config = directory / "config.toml"
        config.write_text(textwrap.dedent(f"""\
            [host]
            root = "{short_dir()}"
            hypervisor = "{request.param}"
            [host.limits]
            cpu = 1000
            ram = 1000
            {network_config(ovs, kea)}{extra}
            [[template.vm]]
            name = "debian"
            vcpu = 1
            vram = "1GiB"
            user_data = "{user_data}"
            ssh_authorized_keys = ["{base / 'id_ed25519.pub'}"]
            [[template.vm.disk]]
            name = "os"
            path = "{image}"
            [[template.vm.net]]
            name = "main"
            [template.vm.net.type.tap]
            """))
        daemon = Daemon(directory, config, netns=ns.name, init_parts=("--all",))
        daemon.start()
        for name in ("deb-one", "deb-two"):
            created = daemon.cli("vm", "create", "-t", "debian", "--name", name)
            assert created.returncode == 0, created.stderr
        for name in ("deb-one", "deb-two"):  # both boot at once
            started_vm = daemon.cli("vm", "start", "--name", name)
            assert started_vm.returncode == 0, started_vm.stderr
        yield Guests(ns, daemon, base / "id_ed25519", image, before, request.param, kea)
    finally:
        if daemon is not None:
            daemon.close()
        tear_down(started)
        ns.delete()


def test_the_guest_gets_its_name_our_key_and_runs_the_user_data(guests):
    start = time.monotonic()
    ip = guests.ssh_ready("deb-one")
    print(f"deb-one answers ssh at {ip} after {time.monotonic() - start:.0f}s of the test")
    listing = guests.daemon.cli("vm", "ls", "-v")
    assert ip in listing.stdout  # the Kea lease, as the seed's "Access your VM" says
    hostname = guests.ssh(ip, "hostname")
    assert hostname.stdout.strip() == "deb-one", hostname.stderr
    status = guests.ssh(ip, "cloud-init", "status", "--wait", timeout=BOOT_TIMEOUT)
    assert "status: done" in status.stdout, status.stdout + status.stderr
    assert guests.ssh(ip, "test", "-f", MARKER).returncode == 0, "runcmd did not run"
    vm = guests.vm("deb-one")
    assert vm["provision"]["seed"] == "nocloud" and vm["provision"]["user_data"] == "cloud-config"
    key_fp = run(["ssh-keygen", "-lf", f"{guests.key}.pub"]).stdout.split()[1]
    assert vm["provision"]["keys"] == [key_fp]
    assert any(d["name"] == "cidata" and d["readonly"] for d in vm["disks"])


def test_a_second_guest_has_its_own_identity(guests):
    one, two = guests.ssh_ready("deb-one"), guests.ssh_ready("deb-two")
    assert guests.ssh(two, "hostname").stdout.strip() == "deb-two"
    ids = {name: guests.ssh(ip, "cat", "/var/lib/cloud/data/instance-id").stdout.strip()
           for name, ip in (("deb-one", one), ("deb-two", two))}
    assert ids == {name: guests.vm(name)["uuid"] for name in ids}
    keys = {ip: guests.ssh(ip, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
            for ip in (one, two)}
    assert keys[one] != keys[two]


def test_vm_ssh_logs_in_as_the_images_user_against_the_guests_own_keys(guests, tmp_path):
    """Before, ``vm ssh deb-one -- hostname`` logged in as the local user (root), and
    Debian's image answered 'Please login as the user "debian"'; and a stale key of the
    same address in ~/.ssh/known_hosts stopped ssh with 'REMOTE HOST IDENTIFICATION HAS
    CHANGED'. Now the user and the host keys come from the guest's console."""
    from tests.support import run_cli

    ip = guests.ssh_ready("deb-one")
    uuid = guests.vm("deb-one")["uuid"]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "another_host"])
    other = (tmp_path / "another_host.pub").read_text().split()
    (home / ".ssh" / "known_hosts").write_text(f"{ip} {other[0]} {other[1]}\n")
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def vm_ssh(*command: str):
        return run_cli("vm", "ssh", "deb-one", "-i", str(guests.key), "-o", "BatchMode=yes",
                       "-o", "ConnectTimeout=10", "--", *command, config=guests.daemon.config,
                       env=env, prefix=guests.ns.prefix, timeout=90)

    result = vm_ssh("hostname")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deb-one"
    assert vm_ssh("id", "-un").stdout.strip() == "debian"
    known = tmp_path / "cache" / "virshle" / "known_hosts" / "default" / uuid
    host_key = guests.ssh(ip, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
    assert host_key in known.read_text()  # learnt from the console, before any login
    dry = run_cli("vm", "ssh", "deb-one", "--dry-run", config=guests.daemon.config, env=env)
    assert "StrictHostKeyChecking=yes" in dry.stdout and f"debian@{ip}" in dry.stdout, dry.stdout


def test_the_template_image_is_never_written_and_rm_takes_the_seed(guests):
    assert sha256_of(guests.image) == guests.image_sha256
    vm = guests.vm("deb-two")
    seed = guests.daemon.root / "vm" / vm["uuid"] / "cidata.iso"
    assert seed.exists()
    assert guests.daemon.cli("vm", "rm", "--force", "--name", "deb-two").returncode == 0
    assert not seed.exists() and not seed.parent.exists()


def test_a_clone_is_a_new_machine(guests):
    """Seen before: the clone of a VM that had booted kept its source's /etc/machine-id, and
    its DHCP client id (dhclient's DUID, kept in its lease file) carried the source's MAC."""
    def identity(name: str) -> dict:
        ip = guests.ssh_ready(name)
        done = guests.ssh(ip, "cloud-init", "status", "--wait", timeout=BOOT_TIMEOUT)
        assert "status: done" in done.stdout, done.stdout + done.stderr
        mac = guests.vm(name)["nets"][0]["mac"]
        leases = wait_for(lambda: [l for l in guests.kea.leases() if l["hw-address"] == mac],
                          timeout=60, what=f"{name}'s lease")
        return {"machine-id": guests.ssh(ip, "cat", "/etc/machine-id").stdout.strip(),
                "host key": guests.ssh(ip, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1],
                "client id": leases[-1].get("client-id"), "mac": mac}

    source = identity("deb-one")
    assert guests.daemon.cli("vm", "stop", "--name", "deb-one").returncode == 0
    cloned = guests.daemon.cli("vm", "clone", "deb-one", "--to", "deb-copy")
    assert cloned.returncode == 0, cloned.stderr
    for name in ("deb-copy", "deb-one"):
        started = guests.daemon.cli("vm", "start", "--name", name)
        assert started.returncode == 0, started.stderr
    copy, again = identity("deb-copy"), identity("deb-one")
    assert again["machine-id"] == source["machine-id"]  # the source keeps its own
    for what in ("machine-id", "host key", "client id", "mac"):
        assert copy[what] != source[what], f"the clone kept its source's {what}: {copy[what]}"
    assert source["mac"].replace(":", "")[-8:] not in (copy["client id"] or "").replace(":", "")
