"""Nodes reached over real SSH, for tests: OpenSSH's sshd in a namespace, an ssh-agent of
the test's own, and ``ssh_nodes``, which puts a daemon and an sshd in each of several
namespaces joined to a client namespace."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import attrs

from .netlab import Netns, end, listening, run, veth


class Sshd:
    """OpenSSH's sshd in ``ns`` on ``address:port``: key authentication only, its own host key."""

    def __init__(self, ns: Netns, directory: Path, address: str, authorized_keys: Path,
                 port: int = 22):
        self.ns = ns
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.address, self.port = address, port
        host_key = self.dir / "host_key"
        if not host_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key])
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            f"Port {port}\nListenAddress {address}\nHostKey {host_key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\nAuthorizedKeysFile {authorized_keys}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nAllowStreamLocalForwarding yes\n"
            "LogLevel VERBOSE\n")
        self.process = ns.popen(["/usr/sbin/sshd", "-D", "-e", "-f", self.config],
                                stdout=subprocess.DEVNULL, stderr=open(self.dir / "sshd.log", "ab"))
        deadline = time.monotonic() + 10
        while True:
            if listening(ns, port, address):
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sshd did not start: " + (self.dir / "sshd.log").read_text()[-2000:])
            time.sleep(0.05)

    def known_hosts_line(self) -> str:
        key = (self.dir / "host_key.pub").read_text().split()
        pattern = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{pattern} {key[0]} {key[1]}"

    def stop(self) -> None:
        end(self.process)
        self.process = None


class SshAgent:
    """An ssh-agent of the test's own, holding the keys it is given."""

    def __init__(self, directory: Path, keys: list[Path]):
        directory.mkdir(parents=True, exist_ok=True)
        self.socket = directory / "agent.sock"
        self.process = subprocess.Popen(["ssh-agent", "-D", "-a", str(self.socket)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ssh-agent did not start")
            time.sleep(0.02)
        for key in keys:
            run(["ssh-add", "-q", key], env={**os.environ, "SSH_AUTH_SOCK": str(self.socket)})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


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
    (namespaces first), ready for ``tear_down``.
    """
    from . import Daemon, short_dir, write_config

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
