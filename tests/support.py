"""What only this repository's tests use: the test guest built by scripts/, nodes over SSH,
a console reader. The fixtures and helpers every test uses come from Virshle's pytest plugin
(``virshle_core.testing``), handed on here for the tests that import them by name.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from virshle_core.testing import (  # noqa: F401
    BIN, LIMITS, MARKER, VIRSHLE, Daemon, Result, alive, make_plugin_dist, network_config,
    remove_short_dirs, run_cli, short_dir, wait_for, write_config, write_guest_config,
)
from virshle_core.testing.sshlab import SshNodes, ssh_nodes  # noqa: F401

REPO = Path(__file__).parent.parent
GUEST_DIR = REPO / ".cache" / "guest"


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
