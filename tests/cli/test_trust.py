"""Trustworthy state (issue 8): each reproduction of a bug an operator hit, kept as a test.

These run against a real ``virshle node serve`` on a scratch root; what
needs a booted guest is in e2e/test_vm.py, crashes and races in
test_faults.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support import VIRSHLE, Daemon, run_cli, wait_for, write_config
from tests.support import one_line_error, raw, rows


def vm_dirs(daemon) -> list[str]:
    return sorted(p.name for p in (daemon.root / "vm").iterdir())


def config_with(directory: Path, text: str) -> Path:
    config = write_config(directory)
    config.write_text(config.read_text() + text)
    return config


def default_limits(directory: Path, limits: str = "") -> Path:
    """A node config with the default [host.limits] (write_config gives the tests room),
    but for the ``limits`` lines given."""
    config = write_config(directory)
    text = config.read_text()
    start = text.index("[host.limits]")
    end = text.index("[[template.vm]]")
    table = f"[host.limits]\n{limits}\n" if limits else ""
    config.write_text(text[:start] + table + text[end:])
    return config


# --- 1. references ---------------------------------------------------------------------


def test_rm_by_name_removes_that_vm_not_the_one_with_that_id(daemon):
    assert daemon.cli("vm", "create", "-t", "xs", "--name", "alpha").returncode == 0  # id 1
    # an all-digit name, as round one allowed: the row is written as an old daemon would have
    conn = sqlite3.connect(daemon.root / "virshle.sqlite")
    legacy_uuid = str(uuid.uuid4())
    conn.execute("INSERT INTO vms (uuid, name, template, vcpu, vram, state, disks, nets) "
                 "VALUES (?, '1', 'xs', 1, 1, 'created', '[]', '[]')", [legacy_uuid])
    conn.execute("INSERT INTO vms (uuid, name, template, vcpu, vram, state, disks, nets) "
                 "VALUES (?, '12345', 'xs', 1, 1, 'created', '[]', '[]')", [str(uuid.uuid4())])
    conn.commit()
    conn.close()
    (daemon.root / "vm" / legacy_uuid).mkdir()

    removed = daemon.cli("vm", "rm", "--name", "1")
    assert removed.returncode == 0, removed.stderr
    assert "Removed VM 1 (id 2)" in removed.stdout
    assert daemon.cli("vm", "info", "--name", "alpha").returncode == 0  # alpha is still there

    info = daemon.cli("vm", "info", "--id", "12345")
    assert info.returncode == 1 and "no VM with id 12345" in one_line_error(info)
    status, body = raw(daemon, "GET", "/api/v1/vms/%D9%A3")  # an Arabic-Indic digit three
    assert status == 404 and body["error"] == "vm_not_found"
    status, body = raw(daemon, "GET", "/api/v1/vms/id:1")
    assert status == 200 and body["name"] == "alpha"
    status, body = raw(daemon, "GET", "/api/v1/vms/name:12345")
    assert status == 200 and body["name"] == "12345"
    status, body = raw(daemon, "GET", "/api/v1/vms/12345")  # bare: an id, or that old name?
    assert status == 400 and body["error"] == "ambiguous_ref"


@pytest.mark.parametrize("name,why", [
    ("1", "all digits"), ("12345", "all digits"),
    ("3f0c6a1e-8d2b-4c55-9a61-0e4b5f7d2c10", "shaped like a uuid"),
    ("abc\n", "lowercase letters"),
])
def test_names_that_read_as_ids_or_uuids_are_refused(shared_daemon, name, why):
    before = rows(shared_daemon)
    result = shared_daemon.cli("vm", "create", "-t", "xs", "--name", name)
    assert result.returncode == 2 and why in one_line_error(result)
    status, body = raw(shared_daemon, "POST", "/api/v1/vms",
                       json.dumps({"template": "xs", "name": name}).encode())
    assert status == 400 and body["error"] == "bad_name"
    assert rows(shared_daemon) == before


@pytest.mark.parametrize("value", ["\u0663", "+3", "-1", "1e3", " 3"])
def test_ids_are_ascii_digits(shared_daemon, value):
    result = shared_daemon.cli("vm", "info", "--id", value)
    assert result.returncode == 2 and "is not a VM id" in one_line_error(result)


# --- 2. limits ---------------------------------------------------------------------------


def test_stopped_vms_reserve_nothing_and_a_start_is_checked(tmp_path, guest):
    """By default only running VMs hold vcpu and vram (as libvirt and Incus count): seven
    stopped VMs on a node that runs one; the second start is refused, in the transaction
    that starts it, until the first stops. Before, the second create was refused."""
    from tests.support import write_guest_config

    cores = os.cpu_count()
    config = write_guest_config(tmp_path, guest, limits=False)
    config.write_text(config.read_text().replace(
        "[[template.vm]]", f"[host.limits]\ncpu = {100 // cores}\n\n[[template.vm]]", 1))
    node = Daemon(tmp_path, config)
    node.start()
    try:
        created = node.cli("vm", "create", "-t", "tiny", "-n", "7")
        assert created.returncode == 0, created.stderr
        names = sorted(vm["name"] for vm in node.cli("vm", "ls", "--json").json())
        assert node.cli("vm", "start", names[0]).returncode == 0
        info = node.cli("node", "ls", "--json").json()[0]
        assert info["cpu"]["reserved"] == 1, info
        refused = node.cli("vm", "start", names[1])
        assert refused.returncode == 1
        line = one_line_error(refused)
        assert f"cannot take VM {names[1]!r} running: cpu: 1 vcpu more" in line, line
        assert "Stop VMs, or raise [host.limits] cpu" in refused.stderr
        second = next(vm for vm in node.cli("vm", "ls", "--json").json()
                      if vm["name"] == names[1])
        assert second["state"] == "created" and not second.get("pending"), second
        assert node.cli("vm", "stop", "--force", names[0]).returncode == 0
        started = node.cli("vm", "start", names[1])
        assert started.returncode == 0, started.stderr
    finally:
        node.close()  # and its guest


def test_reserve_takes_running_or_defined(tmp_path):
    config = default_limits(tmp_path, 'reserve = "stopped"')
    checked = run_cli("node", "init", "--dir", config=config)
    assert checked.returncode == 2, checked.stderr
    assert "reserve" in checked.stderr and '"running" or "defined"' in checked.stderr, checked.stderr


def test_the_node_refuses_creates_past_its_limits(tmp_path):
    """With ``reserve = "defined"``, every VM created holds its vcpu and vram."""
    node = Daemon(tmp_path, default_limits(tmp_path, 'reserve = "defined"'))
    node.start()
    try:
        cores = os.cpu_count()
        fits = cores * 300 // 100  # [host.limits] cpu = 300 (%), and xs has 1 vcpu
        over = node.cli("vm", "create", "-t", "xs", "-n", str(fits + 14))
        assert over.returncode == 1
        line = one_line_error(over)
        assert f"cpu: {fits + 14} vcpu more" in line and "the limit is 300%" in line
        assert f"{fits} vcpu still free" in line
        assert rows(node) == [] and vm_dirs(node) == []
        # --node X bypasses the balancer, not the node's own check
        assert node.cli("vm", "create", "-t", "xs", "--node", "default",
                        "-n", str(fits + 1)).returncode == 1
        assert rows(node) == []
        exact = node.cli("vm", "create", "-t", "xs", "-n", str(fits))
        assert exact.returncode == 0, exact.stderr
        one_more = node.cli("vm", "create", "-t", "xs")  # one node: nothing to choose, it says
        assert one_more.returncode == 1 and "0 vcpu still free" in one_line_error(one_more)
        status, body = raw(node, "POST", "/api/v1/vms", b'{"template": "xs"}')  # ... through the API
        assert status == 409 and body["error"] == "limit_exceeded"
        assert "0 vcpu still free" in body["message"] and "[host.limits] cpu" in body["hint"]
        assert len(rows(node)) == fits
    finally:
        node.stop()


# --- 3. count ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, -1, 1025, 10**32])
def test_count_is_bounded(shared_daemon, count):
    before = rows(shared_daemon)
    status, body = raw(shared_daemon, "POST", "/api/v1/vms",
                       json.dumps({"template": "xs", "count": count}).encode())
    assert status == 400 and body["error"] == "bad_count"
    assert "1024" in body["message"] and "max_count" in body["hint"]
    assert rows(shared_daemon) == before


def test_max_count_is_configurable(tmp_path):
    node = Daemon(tmp_path, config_with(tmp_path, ""))
    node.config.write_text(node.config.read_text().replace("[host.limits]", "max_count = 3\n[host.limits]"))
    node.start()
    try:
        assert node.cli("vm", "create", "-t", "xs", "-n", "3").returncode == 0
        four = node.cli("vm", "create", "-t", "xs", "-n", "4")
        assert four.returncode == 2 and "between 1 and 3" in one_line_error(four)
    finally:
        node.stop()


def slow_template(directory: Path, mib: int = 64) -> Path:
    """A config whose template disk takes a moment to copy into the cache."""
    disk = directory / "big.img"
    with open(disk, "wb") as handle:
        handle.truncate(mib * 1024 * 1024)
    return write_config(directory, disk=disk)


def test_a_create_whose_client_leaves_is_cancelled_and_undone(tmp_path):
    node = Daemon(tmp_path, write_config(tmp_path))
    node.start()
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(node.socket))
        body = json.dumps({"template": "xs", "count": 1000}).encode()
        sock.sendall(b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_for(lambda: len(vm_dirs(node)) >= 5, timeout=30, what="the create to begin")
        sock.close()  # the client is gone
        wait_for(lambda: not rows(node) and not vm_dirs(node), timeout=30,
                 what="the create to be undone")
        time.sleep(1)
        assert rows(node) == [] and vm_dirs(node) == []  # and nothing more is made
        assert node.cli("node", "ping").returncode == 0
    finally:
        node.stop()


def test_ctrl_c_cancels_a_create(tmp_path):
    node = Daemon(tmp_path, write_config(tmp_path))
    node.start()
    try:
        env = {**os.environ, "VIRSHLE_CONFIG": str(node.config)}
        proc = subprocess.Popen([VIRSHLE, "vm", "create", "-t", "xs", "-n", "1000"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: len(vm_dirs(node)) >= 5, timeout=30, what="the create to begin")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130 and "Traceback" not in err
        assert "Interrupted: the create was cancelled" in err
        wait_for(lambda: not rows(node) and not vm_dirs(node), timeout=30,
                 what="the create to be undone")
    finally:
        node.stop()


# --- 4, 5. a crash or a stop in the middle of a create ----------------------------------------


def test_kill_9_during_create_n_8_leaves_none_of_the_set(tmp_path):
    from tests.support import make_plugin_dist

    plugins = make_plugin_dist(tmp_path / "site", "slowclone", """
        import time
        from virshle_core import hookimpl

        @hookimpl(tryfirst=True)
        def virshle_disk_clone():
            time.sleep(0.3)  # then the core's own clone does the work
        """)
    node = Daemon(tmp_path, write_config(tmp_path))
    node.start(env={"PYTHONPATH": str(plugins)})
    try:
        assert node.cli("vm", "create", "-t", "xs", "--name", "before").returncode == 0
        env = {**os.environ, "VIRSHLE_CONFIG": str(node.config)}
        cli = subprocess.Popen([VIRSHLE, "vm", "create", "-t", "xs", "-n", "8"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(vm_dirs(node)) >= 4, timeout=30, what="half of the set")
        node.kill9()
        _, err = cli.communicate(timeout=30)
        assert cli.returncode == 1 and "the connection was lost during POST /vms" in one_line_error(err)
        node.start(env={"PYTHONPATH": str(plugins)})
        assert [name for _, name, _ in rows(node)] == ["before"]
        assert len(vm_dirs(node)) == 1
        assert "rolled back the unfinished create" in node.log()
        listing = node.cli("vm", "ls", "--json").json()
        assert [vm["name"] for vm in listing] == ["before"]
        assert node.cli("vm", "rm", "--name", "before").returncode == 0
    finally:
        node.stop()


def test_a_directory_without_a_row_goes_at_start_and_only_ours(tmp_path):
    node = Daemon(tmp_path, write_config(tmp_path))
    node.start()
    assert node.cli("vm", "create", "-t", "xs", "--name", "kept").returncode == 0
    node.stop()
    orphan = node.root / "vm" / str(uuid.uuid4())
    (orphan / "disk").mkdir(parents=True)
    (orphan / "disk" / "os").write_bytes(b"\0" * 4096)
    stranger = node.root / "vm" / "not-a-vm"
    stranger.mkdir()
    node.start()
    try:
        assert not orphan.exists() and stranger.exists()
        assert f"removed {orphan}: no VM row owns it" in node.log()
        assert [vm["name"] for vm in node.cli("vm", "ls", "--json").json()] == ["kept"]
    finally:
        node.stop()


# --- 6. one daemon per root ----------------------------------------------------------------


def test_two_daemons_started_together_one_wins_and_the_socket_stays(tmp_path):
    node = Daemon(tmp_path, write_config(tmp_path))
    init = node.cli("node", "init", "--dir", "--db")
    assert init.returncode == 0, init.stderr
    env = {**os.environ, "VIRSHLE_CONFIG": str(node.config)}
    first = subprocess.Popen([VIRSHLE, "node", "serve", "-v"], env=env, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    time.sleep(0.3)
    second = subprocess.Popen([VIRSHLE, "node", "serve", "-v"], env=env, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        _, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert f"another node daemon (pid {first.pid}) already serves" in one_line_error(err)
        assert "serving on" not in err
        wait_for(lambda: node.socket.exists() and node.cli("node", "ping").returncode == 0,
                 timeout=20, what="the first daemon")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
        if second.poll() is None:
            second.kill()
            second.wait()


def test_a_file_at_the_socket_path_is_never_deleted(tmp_path):
    node = Daemon(tmp_path, write_config(tmp_path))
    assert node.cli("node", "init", "--dir", "--db").returncode == 0
    node.socket.write_text("precious")
    env = {**os.environ, "VIRSHLE_CONFIG": str(node.config)}
    proc = subprocess.run([VIRSHLE, "node", "serve"], env=env, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1 and "exists and is not a socket" in one_line_error(proc)
    assert node.socket.read_text() == "precious"
    node.socket.unlink()
    node.socket.mkdir()
    proc = subprocess.run([VIRSHLE, "node", "serve"], env=env, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1 and "exists and is a directory" in one_line_error(proc)
    assert node.socket.is_dir()


# --- 7. partial cache files --------------------------------------------------------------------


def test_a_partial_cache_file_goes_at_daemon_start(tmp_path):
    node = Daemon(tmp_path, write_config(tmp_path))
    assert node.cli("node", "init", "--dir", "--db").returncode == 0
    partial = node.root / "cache" / ".disk.img-0123456789abcdef.partial"
    partial.write_bytes(b"\0" * 4096)
    node.start()
    try:
        assert not partial.exists()
        assert "removed the half-copied image" in node.log()
        assert node.cli("vm", "create", "-t", "xs").returncode == 0
    finally:
        node.stop()


# --- 8. a broken database ------------------------------------------------------------------------


def test_an_empty_or_corrupt_database_beside_vms_stops_the_daemon(tmp_path):
    node = Daemon(tmp_path, write_config(tmp_path))
    node.start()
    assert node.cli("vm", "create", "-t", "xs", "-n", "3").returncode == 0
    node.stop()
    db = node.root / "virshle.sqlite"
    env = {**os.environ, "VIRSHLE_CONFIG": str(node.config)}
    for content, problem in ((b"", "is empty (0 bytes)"),
                             (b"SQLite format 3\0" + b"\xff" * 5000, "not a usable SQLite database")):
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        db.write_bytes(content)
        serve = subprocess.run([VIRSHLE, "node", "serve"], env=env, capture_output=True, text=True,
                               timeout=30)
        assert serve.returncode == 1
        line = one_line_error(serve)
        assert problem in line and "3 VM directories" in line and str(db) in line
        assert "--force-new" in serve.stderr
        init = node.cli("node", "init", "--db")
        assert init.returncode == 1 and problem in one_line_error(init)
        assert len(vm_dirs(node)) == 3 and db.read_bytes() == content  # nothing touched
    forced = node.cli("node", "init", "--db", "--force-new")
    assert forced.returncode == 0, forced.stderr
    assert "broken-" in forced.stdout and "lost+found" in forced.stdout
    assert vm_dirs(node) == []
    node.start()  # a new, empty store
    try:
        assert node.cli("vm", "ls", "--json").json() == []
    finally:
        node.stop()


# --- 9. file modes ---------------------------------------------------------------------------------


def test_loose_modes_are_tightened_at_start(tmp_path):
    import grp
    import stat

    node = Daemon(tmp_path, write_config(tmp_path))
    node.start()
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\npassword: hunter2\n")
    vm = node.cli("vm", "create", "-t", "xs", "--user-data", str(user_data), "--json").json()[0]
    node.stop()
    vm_dir = node.root / "vm" / vm["uuid"]
    loose = {node.root: 0o755, node.root / "virshle.sqlite": 0o644, vm_dir: 0o755,
             vm_dir / "user-data": 0o644, vm_dir / "disk" / "os": 0o644, node.root / "cache": 0o755}
    for path, mode in loose.items():
        path.chmod(mode)
    node.init_parts = ()  # the daemon alone, without `node init` first
    node.start()
    try:
        want = {node.root: 0o750, node.root / "virshle.sqlite": 0o640, vm_dir: 0o750,
                vm_dir / "user-data": 0o600, vm_dir / "disk" / "os": 0o600, node.root / "cache": 0o750}
        assert {path: stat.S_IMODE(path.stat().st_mode) for path in want} == want
        assert node.root.stat().st_gid == grp.getgrnam("virshle").gr_gid
        assert "file modes applied" in node.log()
    finally:
        node.stop()


# --- 11. clean errors at start-up and in input ---------------------------------------------------


def test_a_read_only_root_is_one_line(tmp_path):
    node = Daemon(tmp_path, write_config(tmp_path))
    assert node.cli("node", "init", "--dir", "--db").returncode == 0
    subprocess.run(["mount", "--bind", str(node.root), str(node.root)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(node.root)], check=True)
        env = {**os.environ, "VIRSHLE_CONFIG": str(node.config)}
        serve = subprocess.run([VIRSHLE, "node", "serve"], env=env, capture_output=True, text=True,
                               timeout=30)
        assert serve.returncode == 1 and "Read-only file system" in one_line_error(serve)
    finally:
        subprocess.run(["umount", str(node.root)], check=True)


def test_user_data_that_is_not_text_or_too_big_is_exit_2(shared_daemon, tmp_path):
    before = rows(shared_daemon)
    binary = tmp_path / "binary"
    binary.write_bytes(bytes(range(256)) * 4)
    result = shared_daemon.cli("vm", "create", "-t", "xs", "--user-data", str(binary))
    assert result.returncode == 2 and "is not a text file" in one_line_error(result)
    huge = tmp_path / "huge"
    huge.write_bytes(b"#cloud-config\n" + b"a" * (17 * 1024 * 1024))
    result = shared_daemon.cli("vm", "create", "-t", "xs", "--user-data", str(huge))
    assert result.returncode == 2 and "1 MiB" in one_line_error(result)
    # past the daemon's body limit: a JSON 413, at once (the body is never read)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(shared_daemon.socket))
    sock.sendall(b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 20000000\r\n\r\n{")
    reply = sock.recv(65536)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 413") and b'"error": "body_too_large"' in reply
    # within it, but over the user-data limit: 400
    body = json.dumps({"template": "xs", "user_data": "a" * (9 * 1024 * 1024)}).encode()
    status, answer = raw(shared_daemon, "POST", "/api/v1/vms", body)
    assert status == 400 and answer["error"] == "bad_user_data"
    assert rows(shared_daemon) == before


def test_a_413_from_the_node_is_one_line_in_the_cli(tmp_path):
    # the client side of a non-JSON or oversized answer: never a JSONDecodeError
    from virshle_core.client import NodeClient
    from virshle_core.config import NodeEntry
    from virshle_core.errors import VirshleError

    path = tmp_path / "fake.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 25\r\nConnection: close\r\n\r\n413: Request Entity Too ")
        conn.close()

    import threading

    threading.Thread(target=answer, daemon=True).start()
    client = NodeClient(NodeEntry(name="n", url=f"unix://{path}"))
    with pytest.raises(VirshleError, match="HTTP 413"):
        client.create_vms({"template": "xs"})
    server.close()


# --- 12. 500s that were 400s -------------------------------------------------------------------------


def test_protocol_errors_use_the_json_error_shape(shared_daemon):
    status, body = raw(shared_daemon, "POST", "/api/v1/vms", b"[" * 100000 + b"]" * 100000)
    assert status == 400 and body["error"] == "bad_json" and "nested too deeply" in body["message"]
    status, body = raw(shared_daemon, "GET", "/api/v1/vms/99999999999999999999999999999")
    assert status == 404 and body["error"] == "vm_not_found"
    status, body = raw(shared_daemon, "GET", "/api/v1/vms/" + "a" * 20000)
    assert status == 414 and body["error"] == "uri_too_long"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(shared_daemon.socket))
    sock.sendall(b"GET /api/v1/vms HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"431" and json.loads(payload)["error"] == "headers_too_large"


def test_slow_clients_are_cut_and_others_still_served(shared_daemon):
    from virshle_core.daemon.server import HEADER_TIMEOUT

    slow = []
    for _ in range(200):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(shared_daemon.socket))
        sock.sendall(b"GET /api/v1/vms HTTP/1.1\r\n")
        slow.append(sock)
    start = time.monotonic()
    assert shared_daemon.cli("node", "ping").returncode == 0  # served meanwhile
    for sock in slow:  # a header line now and then never completes the request
        sock.sendall(b"X-Slow: 1\r\n")
    for sock in slow:
        sock.settimeout(HEADER_TIMEOUT + 10)
        try:
            while sock.recv(1024):
                pass
        except ConnectionResetError:
            pass
        sock.close()
    assert time.monotonic() - start < HEADER_TIMEOUT + 5


# --- 13, 14. config --------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ('[host]\nhypervisor = "xen"\n', ':2: host.hypervisor: "xen" is offered by no plugin'),
    ('[host]\nroot = "relative/root"\n', ':2: host.root: "relative/root" must be an absolute path'),
    ('[host]\nroot = "/a\\u0000b"\n', ":2: host.root: must not contain a NUL character"),
    ('[[peer]]\nname = "a"\nurl = "unix:///a.sock"\n', ":1: peer: unknown key; the original"),
    ('[[template.vm]]\nname = "big"\nvcpu = 99999999999999999999\n',
     ":3: template.vm[0].vcpu: must be <= 1024"),
    ('[[template.vm]]\nname = "big"\nvram = "99999999999TiB"\n',
     ":3: template.vm[0].vram: must be at most 64 TiB"),
    ('[host]\nstop_timeout = inf\n', ":2: host.stop_timeout: must be a finite number"),
])
def test_config_errors_carry_file_and_line(tmp_path, text, expected):
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = run_cli("node", "ls", config=config)
    assert result.returncode == 2
    assert f"{config}{expected}" in result.stderr and "Traceback" not in result.stderr


def test_a_binary_config_is_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    result = run_cli("node", "ls", config=config)
    assert result.returncode == 2 and "not a TOML text file" in one_line_error(result)


# --- 15, 17, 18. ids, -q, stop of a never-started VM -----------------------------------------------


def test_ids_are_not_reused_end_to_end(daemon):
    first = daemon.cli("vm", "create", "-t", "xs", "--json").json()[0]
    assert daemon.cli("vm", "rm", "--id", str(first["id"])).returncode == 0
    second = daemon.cli("vm", "create", "-t", "xs", "--json").json()[0]
    assert second["id"] == first["id"] + 1


def test_quiet_prints_nothing_on_success(daemon):
    for args in (["vm", "create", "-t", "xs", "--name", "hush", "-q"],
                 ["vm", "stop", "--name", "hush", "-q"],
                 ["vm", "rm", "--name", "hush", "-q"],
                 ["-q", "vm", "create", "-t", "xs", "--name", "hush2"]):
        result = daemon.cli(*args)
        assert result.returncode == 0 and result.stdout == "" and result.stderr == "", args


def test_stopping_a_never_started_vm_says_created(daemon):
    assert daemon.cli("vm", "create", "-t", "xs", "--name", "fresh").returncode == 0
    result = daemon.cli("vm", "stop", "--name", "fresh")
    assert result.returncode == 0
    assert "VM fresh is not running (it is created); nothing to do." in result.stdout
    assert daemon.cli("vm", "info", "--name", "fresh", "--json").json()["state"] == "created"
