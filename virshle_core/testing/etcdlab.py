"""A real etcd on loopback, for tests and benchmarks (Debian's ``etcd-server``): one member,
its data in a directory of the caller's, ended by the pid it recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path


class Etcd:
    def __init__(self, directory: Path):
        from . import wait_for
        from .netlab import free_port

        self.directory, self.port, peer = directory, free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            ["etcd", "--name", "t", f"--data-dir={directory / 'etcd-data'}",
             f"--listen-client-urls={self.url}", f"--advertise-client-urls={self.url}",
             f"--listen-peer-urls=http://127.0.0.1:{peer}",
             f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
             f"--initial-cluster=t=http://127.0.0.1:{peer}"],
            stdout=subprocess.DEVNULL, stderr=open(directory / "etcd.log", "ab"))
        wait_for(self.healthy, timeout=20, what="etcd to answer")

    def healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as reply:
                return b"true" in reply.read()
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
