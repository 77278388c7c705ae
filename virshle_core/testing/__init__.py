"""Virshle's pytest plugin: fixtures that start real processes, for Virshle's own tests
and for plugin authors' (installed as the ``virshle`` pytest11 entry point).

- ``daemon``: a fresh ``virshle node serve`` on a scratch root, stopped after the test;
  ``shared_daemon``: one for a whole session's read-only tests;
- ``register``: register a plugin object in this process's plugin manager for one test;
- ``cli``: ``run_cli(*args)``, the real ``virshle`` script in a subprocess;
- ``write_config``, ``write_guest_config``, ``make_plugin_dist``, ``wait_for``, ``Daemon``
  for tests that need more; ``virshle_core.testing.netlab`` starts Open vSwitch and Kea
  in network namespaces.

Every process a fixture starts is ended by the PID it recorded, even when the test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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


from .scratch import (  # noqa: F401 -- the names tests and plugin authors use
    kill_recorded, owner_gone, owner_mark, remove_short_dirs, short_dir, sweep_short_dirs,
)


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
    command: list[str] | None = None  # `node serve`'s command line, if not VIRSHLE's own
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
        argv = [*(self.command or [VIRSHLE, "node", "serve", "-vvvv"]), *serve_args]
        pidfile = self.directory / "daemon.pid"
        if self.reaped:
            pidfile.unlink(missing_ok=True)
            argv = [sys.executable, str(Path(__file__).with_name("reaper.py")), str(pidfile), *argv]
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
            kill_recorded(pidfile, pidfile.parent.name.encode())  # a VMM names its VM's uuid

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


def qemus_of(root: Path) -> dict[str, int]:
    """The live QEMU processes of the node at ``root`` (its path is on their command line),
    by VM uuid."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and any(str(root).encode() in a for a in argv) \
                and b"-uuid" in argv and state != "Z":
            found[argv[argv.index(b"-uuid") + 1].decode()] = int(entry)
    return found


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


MARKER = "VIRSHLE-GUEST-READY"
"""What the test guest prints on its console once it is up (scripts/build-guest.sh)."""

LIMITS = """
        [host.limits]   # the tests create more VMs than a 2-core machine would take
        cpu = 100000
        ram = 100000
"""



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


def nodes_config(path: Path, daemons: dict[str, "Daemon"], weights: dict[str, int] | None = None
                 ) -> Path:
    """A CLI config (``[[node]]`` entries) that manages ``daemons`` by the given names."""
    path.write_text("".join(
        f'[[node]]\nname = "{name}"\nurl = "unix://{daemon.socket}"\n'
        f'weight = {(weights or {}).get(name, 1)}\n\n' for name, daemon in daemons.items()))
    return path


def wait_for(predicate, timeout: float = 60, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def register():
    """``register(plugin, name=None)``: a plugin object in this process's plugin manager, for
    the test's length only."""
    from virshle_core.hooks import get_plugin_manager

    manager = get_plugin_manager()
    names = []

    def add(plugin, name=None):
        name = name or f"test-{len(names)}-{id(plugin)}"
        manager.register(plugin, name=name)
        names.append(name)
        return plugin

    try:
        yield add
    finally:
        for name in names:
            manager.unregister(name=name)


def network_config(ovs, kea) -> str:
    """The ``[ovs]`` and ``[dhcp.kea]`` tables of a node on a lab's bridge (virshle_core.testing.netlab)."""
    return f'\n[ovs]\nbridge = "br0"\ndb = "{ovs.url}"\n\n[dhcp.kea]\nurl = "{kea.url}"\n'
