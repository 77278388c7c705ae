"""Fixtures that start real processes: the CLI and a real ``virshle node serve``.

Every process a fixture starts is ended by the PID it recorded, even when
the test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from typing import Any

import attrs
import pytest

BIN = Path(sys.executable).parent
VIRSHLE = str(BIN / "virshle")


@attrs.define
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def run_cli(*args: str, config: Path | None = None, env: dict | None = None,
            timeout: float = 60, input: str | None = None, prefix: list | None = None) -> Result:
    """Run the real ``virshle`` script in a subprocess."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("VIRSHLE_PLUGINS", "VIRSHLE_DISABLE_PLUGINS", "VIRSHLE_CONFIG")}
    full_env["COLUMNS"] = "200"
    if config is not None:
        full_env["VIRSHLE_CONFIG"] = str(config)
    full_env.update(env or {})
    proc = subprocess.run([*(prefix or []), VIRSHLE, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, input=input)
    return Result(proc.returncode, proc.stdout, proc.stderr)


_short_base: list[Path] = []


def short_dir(prefix: str = "n") -> Path:
    """A fresh directory with a short path: unix socket paths must fit in 108 bytes."""
    import tempfile

    if not _short_base:
        _short_base.append(Path(tempfile.mkdtemp(prefix="vsh-", dir="/tmp")))
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_short_base[0]))


def remove_short_dirs() -> None:
    """Remove every directory ``short_dir`` made in this process."""
    import shutil

    while _short_base:
        shutil.rmtree(_short_base.pop(), ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _remove_short_dirs():
    yield
    remove_short_dirs()


def write_config(directory: Path, extra: str = "", disk: Path | None = None) -> Path:
    """A config with a scratch root and one template ``xs`` whose disk exists."""
    disk = disk or directory / "disk.img"
    if not disk.exists():
        disk.write_bytes(b"\0" * 1024 * 1024)
    config = directory / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        [host]
        root = "{short_dir()}"

        [host.limits]   # the tests create more VMs than a 2-core machine would take
        cpu = 100000
        ram = 100000

        [[template.vm]]
        name = "xs"
        vcpu = 1
        vram = 2

        [[template.vm.disk]]
        name = "os"
        path = "{disk}"

        [[template.vm.net]]
        name = "main"
        [template.vm.net.type.tap]
        """) + extra)
    return config


@attrs.define
class Daemon:
    """A real ``virshle node serve`` process on its own root."""

    directory: Path
    config: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    netns: str | None = None
    init_parts: tuple[str, ...] = ("--dir", "--db")
    reaped: bool = False  # under tests/reaper.py, for tests that kill -9 the daemon
    pid: int | None = None  # the daemon's own pid
    reapers: list = attrs.Factory(list)

    def node_cli(self, *args: str, **kwargs) -> Result:
        """The CLI inside the node's namespace (what touches the host network must be there)."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return run_cli(*args, config=self.config, prefix=prefix, **kwargs)

    @property
    def root(self) -> Path:
        import tomllib

        return Path(tomllib.loads(self.config.read_text())["host"]["root"])

    @property
    def socket(self) -> Path:
        return self.root / "virshle.sock"

    def cli(self, *args: str, **kwargs) -> Result:
        return run_cli(*args, config=self.config, **kwargs)

    def start(self, *serve_args: str, env: dict | None = None) -> "Daemon":
        if self.init_parts:  # () starts the daemon on the root as it is
            init = self.node_cli("node", "init", *self.init_parts)
            assert init.returncode == 0, init.stderr
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("VIRSHLE_PLUGINS", "VIRSHLE_DISABLE_PLUGINS")}
        full_env["VIRSHLE_CONFIG"] = str(self.config)
        full_env.update(env or {})
        self.log_path = self.directory / "daemon.log"
        log = open(self.log_path, "ab")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        argv = [VIRSHLE, "node", "serve", "-vvvv", *serve_args]
        pidfile = self.directory / "daemon.pid"
        if self.reaped:
            pidfile.unlink(missing_ok=True)
            argv = [sys.executable, str(REPO / "tests" / "reaper.py"), str(pidfile), *argv]
        self.process = subprocess.Popen([*prefix, *argv], stdout=log, stderr=subprocess.STDOUT,
                                        env=full_env, start_new_session=True)
        log.close()
        if self.reaped:
            self.reapers.append(self.process)
            self.pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(),
                                    timeout=10, what="the reaper's pidfile"))
        else:
            self.pid = self.process.pid
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the daemon exited early:\n{self.log()}")
            if self.socket.exists() and self.cli("node", "ping").returncode == 0:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the daemon did not come up:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def close(self) -> None:
        """Stop the daemon and end the VMMs it left running."""
        self.stop()
        self.kill_vmms()
        for reaper in self.reapers:  # they exit once the VMMs they adopted are reaped
            try:
                reaper.wait(15)
            except subprocess.TimeoutExpired:
                reaper.kill()
                reaper.wait()
        self.reapers.clear()

    def kill9(self) -> None:
        """``kill -9`` the daemon (by its own pid), as a crash would end it."""
        os.kill(self.pid, signal.SIGKILL)
        wait_for(lambda: not alive(self.pid), timeout=10, what="the killed daemon to go")
        if not self.reaped:
            self.process.wait()
        self.process = None

    def kill_vmms(self) -> None:
        """End every VMM this node started, by the pid in its VM directory (tests' clean-up)."""
        for pidfile in (self.root / "vm").glob("*/vmm.pid"):
            try:
                pid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if pidfile.parent.name.encode() in cmdline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.reaped:  # the reaper passes the signal on, and outlives the daemon
            if alive(self.pid):
                os.kill(self.pid, sig)
                try:
                    wait_for(lambda: not alive(self.pid), timeout=timeout, what="the daemon to stop")
                except AssertionError:
                    os.kill(self.pid, signal.SIGKILL)
            self.process = None
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def daemon(tmp_path: Path):
    """A fresh daemon for tests that change or stop it."""
    node = Daemon(tmp_path, write_config(tmp_path))
    node.start()
    try:
        yield node
    finally:
        node.stop()
        node.kill_vmms()


@pytest.fixture(scope="session")
def shared_daemon(tmp_path_factory):
    """One daemon shared by the read-only tests."""
    directory = tmp_path_factory.mktemp("shared-node")
    node = Daemon(directory, write_config(directory))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def cli():
    return run_cli


def make_plugin_dist(directory: Path, name: str, code: str, version: str = "0.1") -> Path:
    """Install a one-module plugin the way pip would (a dist-info with its entry point).

    Put ``directory`` on PYTHONPATH to have Virshle discover it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    module = f"virshle_test_{name}"
    (directory / f"{module}.py").write_text(textwrap.dedent(code))
    dist = directory / f"virshle_test_{name}-{version}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: virshle-test-{name}\nVersion: {version}\n\n")
    (dist / "entry_points.txt").write_text(f"[virshle]\n{name} = {module}\n")
    return directory


REPO = Path(__file__).parent.parent
GUEST_DIR = REPO / ".cache" / "guest"
MARKER = "VIRSHLE-GUEST-READY"


@pytest.fixture(scope="session")
def guest() -> Path:
    """The small test guest (kernel + busybox initramfs + a 64 MiB disk), built once and cached."""
    subprocess.run([str(REPO / "scripts" / "build-guest.sh"), str(GUEST_DIR)], check=True)
    return GUEST_DIR


def installed_hypervisors() -> list[str]:
    import shutil

    found = []
    if shutil.which("qemu-system-x86_64"):
        found.append("qemu")
    if shutil.which("cloud-hypervisor"):
        found.append("ch")
    return found


LIMITS = """
        [host.limits]   # the tests create more VMs than a 2-core machine would take
        cpu = 100000
        ram = 100000
"""


def network_config(ovs, kea) -> str:
    """The ``[ovs]`` and ``[dhcp.kea]`` tables of a node on a lab's bridge (tests.netlab)."""
    return f'\n[ovs]\nbridge = "br0"\ndb = "{ovs.url}"\n\n[dhcp.kea]\nurl = "{kea.url}"\n'


def write_guest_config(directory: Path, guest: Path, hypervisor: str = "qemu", extra: str = "",
                       limits: bool = True) -> Path:
    """A node config whose template ``tiny`` boots the test guest."""
    disk = directory / "template-disk.raw"
    if not disk.exists():
        import shutil

        shutil.copyfile(guest / "disk.raw", disk)
    config = directory / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        [host]
        root = "{short_dir()}"
        hypervisor = "{hypervisor}"
        stop_timeout = 20
        {LIMITS if limits else ""}
        [[template.vm]]
        name = "tiny"
        vcpu = 1
        vram = "256MiB"
        kernel = "{guest / 'vmlinuz'}"
        initramfs = "{guest / 'initramfs.gz'}"
        cmdline = "console=ttyS0 quiet panic=-1"

        [[template.vm.disk]]
        name = "os"
        path = "{disk}"
        """) + extra)
    return config


def wait_for(predicate, timeout: float = 60, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@attrs.define
class SshNodes:
    """Nodes reached over real SSH: see ``ssh_nodes``."""

    client: Any
    nodes: dict
    sshds: dict
    agent: Any
    home: Path
    key: Path
    addresses: dict
    base: Path

    def url(self, name: str, path: str | None = None) -> str:
        return f"ssh://root@{self.addresses[name]}:22{path or self.nodes[name].socket}"


def ssh_nodes(names: list[str], tag: str, network: str, parts: list) -> SshNodes:
    """A client namespace and, per node, a namespace with its own daemon and OpenSSH sshd.

    Each node is joined to the client by a veth (``<network>.<i>.1`` on the client,
    ``<network>.<i>.2`` on the node); an ssh-agent holds a key every sshd authorises; a HOME
    holds a known_hosts with their host keys. All that starts is appended to ``parts``
    (namespaces first), ready for ``tests.netlab.tear_down``.
    """
    from tests.netlab import Netns, SshAgent, Sshd, run, veth

    base = short_dir("cl")
    client = Netns(f"vsh-cli{tag}")
    parts.append(client)
    key = base / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
    agent = SshAgent(base / "agent", [key])
    parts.append(agent)
    home = base / "home"
    (home / ".ssh").mkdir(parents=True)
    nodes, sshds, addresses, known = {}, {}, {}, []
    for index, name in enumerate(names, start=1):
        ns = Netns(f"vsh-{name}{tag}")
        parts.append(ns)
        veth(client, f"c{index}", ns, f"n{index}")
        client.exec(["ip", "addr", "add", f"{network}.{index}.1/24", "dev", f"c{index}"])
        ns.exec(["ip", "addr", "add", f"{network}.{index}.2/24", "dev", f"n{index}"])
        addresses[name] = f"{network}.{index}.2"
        directory = short_dir(name[:2])
        daemon = Daemon(directory, write_config(directory), netns=ns.name)
        daemon.start()
        parts.append(daemon)
        nodes[name] = daemon
        sshd = Sshd(ns, base / f"sshd-{name}", addresses[name], key.with_suffix(".pub"))
        parts.append(sshd)
        sshds[name] = sshd
        known.append(sshd.known_hosts_line())
    (home / ".ssh" / "known_hosts").write_text("\n".join(known) + "\n")
    return SshNodes(client, nodes, sshds, agent, home, key, addresses, base)


class Console:
    """A `virshle` command joined to a console through pipes (``vm attach``, ``vm start --attach``).

    Its output is read in the background; ``expect`` waits for bytes, ``send`` types,
    ``detach`` sends Ctrl-] and checks the command ended well. Always ended on exit.
    """

    def __init__(self, argv: list[str], env: dict):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.output = bytearray()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while chunk := self.proc.stdout.read1(4096):
            self.output.extend(chunk)

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def expect(self, data: bytes, timeout: float = 30) -> None:
        wait_for(lambda: data in self.output, timeout=timeout, what=f"{data!r} on the console")

    def detach(self) -> str:
        """Ctrl-]: the command must end with status 0; returns what it said on stderr."""
        self.send(b"\x1d")
        assert self.proc.wait(15) == 0
        return self.proc.stderr.read().decode()

    def __enter__(self) -> "Console":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
