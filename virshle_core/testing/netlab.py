"""A network lab of real components, in network namespaces the tests create.

- ``Netns``: a namespace (``ip netns add``), deleted at the end;
- ``Ovs``: ovsdb-server + ovs-vswitchd in a namespace, userspace datapath,
  every file (db, sockets, pids, logs) in one directory;
- ``Kea``: kea-dhcp4 serving one subnet on an interface of a namespace,
  with lease_cmds and its unix control socket.

Every process is started with a pidfile (or kept as a Popen) and ended by
that pid. Traffic stays inside the namespaces: the subnets are the lab's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path


LEASE_CMDS = "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so"


def end(process: subprocess.Popen | None) -> None:
    """SIGTERM a process the lab started (by its recorded pid), SIGKILL after 10 s; reap it."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(argv: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True,
                          **kwargs)


def kill_pidfile(path: Path, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


REGISTRY = Path("/run/virshle-testing/netns")
"""One file per namespace a lab made, holding its process's mark (``owner_mark``)."""

_swept: list[bool] = []


def sweep_namespaces() -> list[str]:
    """Delete the namespaces a lab made in a process that ended before its tear-down (a
    killed test run), ending what still runs inside them by pid."""
    from . import owner_gone

    swept = []
    for record in sorted(REGISTRY.glob("*")) if REGISTRY.is_dir() else []:
        try:
            mark = record.read_text()
        except OSError:
            continue
        if owner_gone(mark):
            Netns.existing(record.name).delete()
            swept.append(record.name)
    return swept


class Netns:
    def __init__(self, name: str):
        from . import owner_mark

        if not _swept:  # once a process: what killed runs left
            sweep_namespaces()
            _swept.append(True)
        self.name = name
        REGISTRY.mkdir(parents=True, exist_ok=True)
        (REGISTRY / name).write_text(owner_mark() + "\n")  # before it exists: never unrecorded
        run(["ip", "netns", "add", name])
        self.exec(["ip", "link", "set", "lo", "up"])

    @classmethod
    def existing(cls, name: str) -> "Netns":
        ns = cls.__new__(cls)
        ns.name = name
        return ns

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def exec(self, argv: list, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return run(self.prefix + list(argv), check=check, **kwargs)

    def popen(self, argv: list, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.prefix + [str(a) for a in argv], **kwargs)

    def pids(self) -> list[int]:
        result = run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in result.stdout.split()]

    def stop(self) -> None:
        self.delete()

    def delete(self) -> None:
        # anything still inside was started by this lab's tests: end it by pid
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run(["ip", "netns", "del", self.name], check=False)
        (REGISTRY / self.name).unlink(missing_ok=True)


def tear_down(parts: list) -> None:
    """End what a lab started, newest first (``close()`` or ``stop()``); report, never raise."""
    import sys

    for part in reversed(parts):
        try:
            (getattr(part, "close", None) or part.stop)()
        except Exception as exc:  # the rest must still be ended
            print(f"tear-down of {part!r} failed: {exc}", file=sys.stderr)


def veth(ns_a: Netns | None, name_a: str, ns_b: Netns, name_b: str) -> None:
    """A veth pair: ``name_a`` in ``ns_a`` (or here), ``name_b`` in ``ns_b``."""
    run(["ip", "link", "add", name_a, "type", "veth", "peer", "name", name_b])
    run(["ip", "link", "set", name_b, "netns", ns_b.name])
    if ns_a is not None:
        run(["ip", "link", "set", name_a, "netns", ns_a.name])
        ns_a.exec(["ip", "link", "set", name_a, "up"])
    else:
        run(["ip", "link", "set", name_a, "up"])
    ns_b.exec(["ip", "link", "set", name_b, "up"])


class Ovs:
    """Open vSwitch on the userspace datapath, inside ``ns``, with its files in ``directory``."""

    def __init__(self, ns: Netns, directory: Path):
        self.ns = ns
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / "conf.db"
        self.sock = self.dir / "db.sock"
        self.env = {**os.environ, "OVS_RUNDIR": str(self.dir), "OVS_LOGDIR": str(self.dir),
                    "OVS_DBDIR": str(self.dir)}
        run(["ovsdb-tool", "create", self.db, "/usr/share/openvswitch/vswitch.ovsschema"])
        ns.exec(["ovsdb-server", self.db, f"--remote=punix:{self.sock}",
                 f"--pidfile={self.dir / 'ovsdb-server.pid'}", f"--log-file={self.dir / 'ovsdb-server.log'}",
                 f"--unixctl={self.dir / 'ovsdb-server.ctl'}", "--detach"], env=self.env)
        self.vsctl("--no-wait", "init")
        ns.exec(["ovs-vswitchd", f"unix:{self.sock}", f"--pidfile={self.dir / 'ovs-vswitchd.pid'}",
                 f"--log-file={self.dir / 'ovs-vswitchd.log'}",
                 f"--unixctl={self.dir / 'ovs-vswitchd.ctl'}", "--detach"], env=self.env)

    @property
    def url(self) -> str:
        return f"unix:{self.sock}"

    def vsctl(self, *args: str, check: bool = True) -> str:
        result = self.ns.exec(["ovs-vsctl", f"--db=unix:{self.sock}", "--timeout=10", *args],
                              check=check, env=self.env)
        return result.stdout.strip()

    def add_bridge(self, name: str, address: str | None = None) -> None:
        self.vsctl("--may-exist", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev")
        deadline = time.monotonic() + 10
        while self.ns.exec(["ip", "link", "show", name], check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"bridge {name} did not appear")
            time.sleep(0.05)
        self.ns.exec(["ip", "link", "set", name, "up"])
        if address:
            self.ns.exec(["ip", "addr", "add", address, "dev", name])

    def ports(self, bridge: str) -> list[str]:
        return [p for p in self.vsctl("list-ports", bridge).splitlines() if p]

    def stop(self) -> None:
        kill_pidfile(self.dir / "ovs-vswitchd.pid")
        kill_pidfile(self.dir / "ovsdb-server.pid")


def free_port() -> int:
    """A TCP port free on loopback now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HostNs(Netns):
    """The host's own namespace, where a test runs what it reaches on loopback (an sshd
    for a node over ``ssh://127.0.0.1``): nothing to create or delete."""

    def __init__(self) -> None:
        self.name = "(the host)"

    @property
    def prefix(self) -> list[str]:
        return []

    def delete(self) -> None:
        pass


def listening(ns: Netns, port: int, address: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``address:port`` in ``ns``."""
    return ns.exec(["bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}"], check=False).returncode == 0


def start_kea(ns: Netns, argv: list, directory: Path, ready) -> subprocess.Popen:
    """A Kea program (``kea-dhcp4 -c FILE``, ``kea-ctrl-agent -c FILE``...) in ``ns``, its
    pid and lock files and its stderr in ``directory``; returns once ``ready()``."""
    name = Path(str(argv[0])).name
    process = ns.popen(argv, stdout=subprocess.DEVNULL,
                       stderr=open(directory / f"{name}.stderr", "ab"),
                       env={**os.environ, "KEA_PIDFILE_DIR": str(directory),
                            "KEA_LOCKFILE_DIR": str(directory)})
    deadline = time.monotonic() + 20
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            end(process)
            raise RuntimeError(f"{name} did not start: "
                               + (directory / f"{name}.stderr").read_text()[-2000:])
        time.sleep(0.05)
    return process


class Kea:
    """kea-dhcp4 (or, with ``version=6``, kea-dhcp6) on ``interface`` of ``ns``: one subnet,
    lease_cmds, a unix control socket."""

    def __init__(self, ns: Netns, directory: Path, interface: str, subnet: str, pool: str,
                 router: str | None = None, valid_lifetime: int = 600, version: int = 4):
        self.ns = ns
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.version = version
        self.socket = self.dir / f"kea{version}.sock"
        self.config = self.dir / f"kea-dhcp{version}.conf"
        if version == 6:
            self.config.write_text(json.dumps({"Dhcp6": {
                "interfaces-config": {"interfaces": [interface]},
                "control-socket": {"socket-type": "unix", "socket-name": str(self.socket)},
                "lease-database": {"type": "memfile", "persist": True,
                                   "name": str(self.dir / "leases6.csv"), "lfc-interval": 0},
                "hooks-libraries": [{"library": LEASE_CMDS}],
                "preferred-lifetime": valid_lifetime // 2, "valid-lifetime": valid_lifetime,
                "server-id": {"type": "LLT", "persist": False},
                "subnet6": [{"id": 1, "subnet": subnet, "interface": interface,
                             "pools": [{"pool": pool}]}],
                "loggers": [{"name": "kea-dhcp6",
                             "output_options": [{"output": str(self.dir / "kea.log")}],
                             "severity": "INFO"}],
            }}, indent=2))
            self.process = None
            self.start()
            return
        self.config.write_text(json.dumps({"Dhcp4": {
            "interfaces-config": {"interfaces": [interface]},
            "control-socket": {"socket-type": "unix", "socket-name": str(self.socket)},
            "lease-database": {"type": "memfile", "persist": True,
                               "name": str(self.dir / "leases4.csv"), "lfc-interval": 0},
            "hooks-libraries": [{"library": LEASE_CMDS}],
            "valid-lifetime": valid_lifetime, "renew-timer": valid_lifetime // 4,
            "rebind-timer": valid_lifetime // 2,
            "subnet4": [{"id": 1, "subnet": subnet, "interface": interface,
                         "pools": [{"pool": pool}],
                         "option-data": [{"name": "routers", "data": router}]}],
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": str(self.dir / "kea.log")}],
                         "severity": "INFO"}],
        }}, indent=2))
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = start_kea(self.ns, [f"kea-dhcp{self.version}", "-c", self.config],
                                 self.dir, self.socket.exists)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def command(self, command: str, arguments: dict | None = None) -> dict:
        import socket as socket_module

        sock = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(str(self.socket))
        request = {"command": command}
        if arguments:
            request["arguments"] = arguments
        sock.sendall(json.dumps(request).encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        return json.loads(data)

    def leases(self) -> list[dict]:
        command = f"lease{self.version}-get-all"
        return self.command(command).get("arguments", {}).get("leases", [])

    def stop(self) -> None:
        end(self.process)
        self.process = None
        self.socket.unlink(missing_ok=True)


class KeaAgent:
    """kea-ctrl-agent in ``ns``, on ``127.0.0.1:port`` there, forwarding to ``kea``'s control
    socket: what ``[dhcp.kea] url = "tcp://..."`` talks to."""

    def __init__(self, kea: Kea, port: int = 8000):
        self.ns = kea.ns
        self.dir = kea.dir
        self.port = port
        self.config = self.dir / "kea-ctrl-agent.conf"
        self.config.write_text(json.dumps({"Control-agent": {
            "http-host": "127.0.0.1", "http-port": port,
            "control-sockets": {f"dhcp{kea.version}": {"socket-type": "unix",
                                                       "socket-name": str(kea.socket)}},
            "loggers": [{"name": "kea-ctrl-agent",
                         "output_options": [{"output": str(self.dir / "agent.log")}],
                         "severity": "INFO"}],
        }}, indent=2))
        self.process = start_kea(self.ns, ["kea-ctrl-agent", "-c", self.config], self.dir,
                                 lambda: listening(self.ns, port))

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        end(self.process)
        self.process = None


def bridge_with_dhcp(ns: Netns, base: Path, gateway: str, pool: str, parts: list) -> tuple[Ovs, Kea]:
    """OVS in ``ns`` with br0 at ``gateway`` (``10.99.0.1/24``) and Kea serving ``pool`` on it.

    What it starts is appended to ``parts`` (for ``tear_down``) as it starts.
    """
    import ipaddress

    interface = ipaddress.ip_interface(gateway)
    ovs = Ovs(ns, base / "ovs")
    parts.append(ovs)
    ovs.add_bridge("br0", gateway)
    kea = Kea(ns, base / "kea", "br0", str(interface.network), pool, str(interface.ip))
    parts.append(kea)
    return ovs, kea


