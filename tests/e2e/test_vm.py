"""End to end on a real hypervisor: the test guest boots under QEMU (TCG here).

Parametrised over the hypervisors installed: QEMU always in CI, and
cloud-hypervisor wherever its binary is on PATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support import (MARKER, VIRSHLE, Console, Daemon, alive, installed_hypervisors,
                            attach_console, wait_for, write_guest_config)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not installed_hypervisors(),
                                                  reason="no hypervisor installed")]


@pytest.fixture(scope="module", params=installed_hypervisors())
def node(request, tmp_path_factory, guest):
    directory = tmp_path_factory.mktemp(f"node-{request.param}")
    daemon = Daemon(directory, write_guest_config(directory, guest, request.param))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        daemon.kill_vmms()


def vm_json(node, name):
    result = node.cli("vm", "info", "--name", name, "--json")
    assert result.returncode == 0, result.stderr
    return result.json()


def vmm_pid(node, vm) -> int:
    return int((node.root / "vm" / vm["uuid"] / "vmm.pid").read_text())


def test_the_whole_life_of_a_vm(node, guest):
    template_disk = node.directory / "template-disk.raw"
    checksum = hashlib.sha256(template_disk.read_bytes()).hexdigest()
    seen: list[dict] = []
    followers: list[subprocess.Popen] = []

    def follow_events():
        proc = subprocess.Popen([VIRSHLE, "events", "--json"], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "VIRSHLE_CONFIG": str(node.config)})
        followers.append(proc)
        threading.Thread(target=lambda: [seen.append(json.loads(line)) for line in proc.stdout],
                         daemon=True).start()
        time.sleep(0.5)

    follow_events()
    try:
        created = node.cli("vm", "create", "-t", "tiny", "--name", "life")
        assert created.returncode == 0, created.stderr
        started = node.cli("vm", "start", "--name", "life")
        assert started.returncode == 0, started.stderr
        vm = vm_json(node, "life")
        assert vm["state"] == "running"

        # the marker reaches the kept console log, through the API
        wait_for(lambda: MARKER in node.cli("vm", "logs", "--name", "life").stdout,
                 timeout=90, what="the guest's marker in vm logs")
        logs = node.cli("vm", "logs", "--name", "life").stdout
        assert "virshle-guest: disk vda 131072 sectors" in logs  # its own disk is attached

        # the console through vm attach: a command runs in the guest
        attach = attach_console(node, "life", b"echo attached-$((6*7))\n", b"attached-42")
        assert b"attached-42" in attach

        # the daemon dies hard: the guest does not notice
        pid = vmm_pid(node, vm)
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(10)
        node.process = None
        assert alive(pid)
        node.start()
        follow_events()  # the first stream ended with the daemon
        assert vm_json(node, "life")["state"] == "running"  # re-adopted
        assert "re-adopted 1 running VM(s)" in node.log()

        # and controls it as before: a graceful stop through ACPI
        stopped = node.cli("vm", "stop", "--name", "life")
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.startswith("Stopped VM life")
        assert not alive(pid)
        assert vm_json(node, "life")["state"] == "shutdown"
        assert "power button, powering off" in node.cli("vm", "logs", "--name", "life").stdout
        again = node.cli("vm", "stop", "--name", "life")
        assert again.returncode == 0 and "nothing to do" in again.stdout

        # the VMM killed behind our back: crashed, noticed by the supervisor
        assert node.cli("vm", "start", "--name", "life").returncode == 0
        pid = vmm_pid(node, vm_json(node, "life"))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: vm_json(node, "life")["state"] == "crashed", timeout=15, what="crashed")
        wait_for(lambda: any(e.get("event") == "vm-state-changed" and e.get("new") == "crashed"
                             for e in seen), timeout=10, what="the vm-state-changed event")

        removed = node.cli("vm", "rm", "--name", "life")
        assert removed.returncode == 0, removed.stderr
        assert list((node.root / "vm").iterdir()) == []
        assert hashlib.sha256(template_disk.read_bytes()).hexdigest() == checksum
        names = [e["event"] for e in seen]
        for event in ("vm-created", "vm-started", "vm-stopped", "vm-deleted"):
            assert event in names, names
    finally:
        for proc in followers:
            proc.terminate()
            proc.wait(10)


def test_start_attach_shows_the_boot(node):
    assert node.cli("vm", "create", "-t", "tiny", "--name", "boot-attach").returncode == 0
    with Console([VIRSHLE, "vm", "start", "--name", "boot-attach", "--attach"],
                 {**os.environ, "VIRSHLE_CONFIG": str(node.config)}) as console:
        console.expect(MARKER.encode(), timeout=90)
        console.detach()
    assert node.cli("vm", "rm", "--name", "boot-attach", "--force").returncode == 0


def test_faults_are_refused_clearly_and_leave_nothing(node, tmp_path):
    assert node.cli("vm", "create", "-t", "tiny", "--name", "faults").returncode == 0
    assert node.cli("vm", "start", "--name", "faults").returncode == 0
    again = node.cli("vm", "start", "--name", "faults")
    assert again.returncode == 1 and "Error: VM 'faults' is already running" in again.stderr
    rm = node.cli("vm", "rm", "--name", "faults")
    assert rm.returncode == 1 and "VM 'faults' is running" in rm.stderr
    assert "vm rm --force" in rm.stderr
    forced = node.cli("vm", "rm", "--name", "faults", "--force")
    assert forced.returncode == 0, forced.stderr
    unknown = node.cli("vm", "start", "--id", "9999")
    assert unknown.returncode == 1 and "no VM with id 9999" in unknown.stderr
    for out in (again, rm, unknown):
        assert "Traceback" not in out.stderr
    assert list((node.root / "vm").iterdir()) == []


@pytest.mark.parametrize("change,message", [
    (('kernel = "', 'kernel = "/nonexistent'), "kernel /nonexistent"),
    (('stop_timeout = 20', 'stop_timeout = 20\n[qemu]\nbinary = "qemu-system-nowhere"'),
     "qemu-system-nowhere is not installed"),
])
def test_start_failures_name_the_cause(tmp_path, guest, change, message):
    if "qemu" not in installed_hypervisors():
        pytest.skip("QEMU-specific messages")
    config = write_guest_config(tmp_path, guest, "qemu")
    config.write_text(config.read_text().replace(*change, 1))
    daemon = Daemon(tmp_path, config)
    daemon.start()
    try:
        assert daemon.cli("vm", "create", "-t", "tiny", "--name", "fail").returncode == 0
        result = daemon.cli("vm", "start", "--name", "fail")
        assert result.returncode == 1
        assert message in result.stderr and "Traceback" not in result.stderr
        if "not installed" in message:
            assert "qemu-system-x86" in result.stderr  # the package to install
        assert daemon.cli("vm", "info", "--name", "fail", "--json").json()["state"] == "created"
        assert not list((daemon.root / "vm").glob("*/vmm.pid"))
    finally:
        daemon.stop()
        daemon.kill_vmms()


def test_missing_template_disk_at_create(tmp_path, guest):
    config = write_guest_config(tmp_path, guest)
    (tmp_path / "template-disk.raw").unlink()
    daemon = Daemon(tmp_path, config)
    daemon.start()
    try:
        result = daemon.cli("vm", "create", "-t", "tiny")
        assert result.returncode == 2
        assert "disk 'os' is missing" in result.stderr
        assert daemon.cli("vm", "ls", "--json").json() == []
        assert list((daemon.root / "vm").iterdir()) == []
    finally:
        daemon.stop()


def test_eight_concurrent_creates(node):
    def create(_):
        return node.cli("vm", "create", "-t", "tiny", "--json")

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    vms = [r.json()[0] for r in results]
    assert len({vm["name"] for vm in vms}) == 8
    assert len({vm["id"] for vm in vms}) == 8
    assert len({vm["uuid"] for vm in vms}) == 8
    for vm in vms:
        assert node.cli("vm", "rm", "--uuid", vm["uuid"]).returncode == 0


PROBE = """
import os, sqlite3, sys
readable = []
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        readable.append(path)
    except OSError:
        pass
try:
    db = sqlite3.connect("file:" + sys.argv[1] + "/virshle.sqlite?mode=ro", uri=True)
    db.execute("SELECT user_data FROM vms").fetchall()
    readable.append("the database")
except sqlite3.Error:
    pass
print("\\n".join(readable))
"""


def test_other_users_read_nothing_under_the_root(node, tmp_path):
    # Issue 8, item 9: a local user outside group virshle read a cloud-init password.
    import grp
    import stat

    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\npassword: hunter2\n")
    assert node.cli("vm", "create", "-t", "tiny", "--name", "secret",
                    "--user-data", str(user_data)).returncode == 0
    assert node.cli("vm", "start", "--name", "secret").returncode == 0
    vm = vm_json(node, "secret")
    root = node.root
    paths = [root] + sorted(p for p in root.rglob("*"))
    user = f"vsh{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    try:
        probe = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", PROBE,
                                *map(str, paths)], capture_output=True, text=True, timeout=60)
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.strip() == "", f"{user} could read: {probe.stdout}"
    finally:
        subprocess.run(["userdel", user], check=True)
    info = root.stat()
    assert stat.S_IMODE(info.st_mode) == 0o750 and info.st_gid == grp.getgrnam("virshle").gr_gid
    for path in paths:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o007 == 0, f"{path} is {mode:04o}"
    vm_dir = root / "vm" / vm["uuid"]
    assert stat.S_IMODE(vm_dir.stat().st_mode) == 0o750
    assert stat.S_IMODE((vm_dir / "user-data").stat().st_mode) == 0o600
    assert stat.S_IMODE((vm_dir / "disk" / "os").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "cache").stat().st_mode) == 0o750
    for name in ("virshle.sqlite", "virshle.sqlite-wal", "virshle.sqlite-shm"):
        assert stat.S_IMODE((root / name).stat().st_mode) & 0o137 == 0, name  # 0640 or stricter
    assert node.cli("vm", "rm", "--name", "secret", "--force").returncode == 0


def _zombie_children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def test_no_zombie_survives_a_forced_stop(node):
    # Issue 8, item 16: the QEMU of `vm stop --force` stayed a zombie until the daemon exited.
    assert node.cli("vm", "create", "-t", "tiny", "--name", "undead").returncode == 0
    assert node.cli("vm", "start", "--name", "undead").returncode == 0
    pid = vmm_pid(node, vm_json(node, "undead"))
    assert node.cli("vm", "stop", "--name", "undead", "--force").returncode == 0
    assert not Path(f"/proc/{pid}").exists(), (node.pid, Path(f"/proc/{pid}/stat").read_text())
    # nor the processes QEMU left while it daemonised (reaped by the supervisor)
    wait_for(lambda: not _zombie_children(node.process.pid), timeout=10,
             what="the daemon to reap every child")
    assert node.cli("vm", "rm", "--name", "undead").returncode == 0
