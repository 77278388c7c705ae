"""Scratch directories with short paths, and the sweep of what killed test runs left.

Every directory and namespace a test run makes records its owner (``owner_mark``: a
pid and that process's start time); the next run ends what an owner that is gone left
behind, by the pids it recorded, never by name.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

_short_base: list[Path] = []


def owner_mark(pid: int | None = None) -> str | None:
    """``PID START``: a process, told apart from a later one that reuses its pid."""
    pid = os.getpid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return f"{pid} {handle.read().rsplit(')', 1)[1].split()[19]}"
    except (OSError, IndexError):
        return None


def owner_gone(mark: str) -> bool:
    """Whether the process ``mark`` names has ended (a test run killed before its tear-down)."""
    try:
        return owner_mark(int(mark.split()[0])) != mark.strip()
    except (ValueError, IndexError):
        return False  # not a mark of ours: leave it


def short_dir(prefix: str = "n") -> Path:
    """A fresh directory with a short path: unix socket paths must fit in 108 bytes.

    Its base directory records the process that made it; the first call of a process
    removes the bases whose process ended without removing them (killed, say), after
    ending the daemons and VMMs they recorded, by pid.
    """
    import tempfile

    if not _short_base:
        sweep_short_dirs()
        base = Path(tempfile.mkdtemp(prefix="vsh-", dir="/tmp"))
        (base / ".owner").write_text(owner_mark() + "\n")
        _short_base.append(base)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_short_base[0]))


def sweep_short_dirs() -> list[Path]:
    """Remove what earlier test processes left under /tmp/vsh-* when they were killed."""
    import shutil

    swept = []
    for base in Path("/tmp").glob("vsh-*"):
        try:
            mark = (base / ".owner").read_text()
        except OSError:
            continue  # not made by short_dir, or from before it marked its bases
        if not owner_gone(mark):
            continue
        for lock in base.glob("*/daemon.lock"):  # the daemon wrote its pid there
            kill_recorded(lock, b"node")
        for pidfile in base.glob("*/vm/*/vmm.pid"):  # a VMM names its VM's uuid
            kill_recorded(pidfile, pidfile.parent.name.encode())
        shutil.rmtree(base, ignore_errors=True)
        swept.append(base)
    return swept


def kill_recorded(pidfile: Path, marker: bytes) -> None:
    try:
        pid = int(pidfile.read_text().split()[0])
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if marker not in handle.read():
                return  # the pid went to another process since
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def remove_short_dirs() -> None:
    """Remove every directory ``short_dir`` made in this process."""
    import shutil

    while _short_base:
        shutil.rmtree(_short_base.pop(), ignore_errors=True)
