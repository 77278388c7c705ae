"""Opening a node's database safely: a database that is missing, empty or damaged while VM
directories exist is refused (never silently replaced), and can be set aside whole."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from ..errors import VirshleError
from ..wire.refs import UUID_PATTERN
from .store import Store


def vm_directories(vm_root: Path) -> list[Path]:
    """The VM directories under ``<root>/vm/``: only ours, named by a uuid."""

    try:
        entries = list(vm_root.iterdir())
    except OSError:
        return []
    return sorted(e for e in entries if UUID_PATTERN.fullmatch(e.name) and e.is_dir())


def open_node_store(db_path: Path, vm_root: Path, node: str = "default") -> Store:
    """The node's store, refusing a database that is broken or that lost its VMs.

    A node never starts with an empty store while ``<root>/vm/`` holds VM
    directories: that would forget VMs that exist. The way out is explicit,
    ``virshle node init --db --force-new`` (``set_aside``).
    """
    from ..errors import VirshleError

    dirs = len(vm_directories(vm_root))
    at_stake = (f"; {dirs} VM director{'y' if dirs == 1 else 'ies'} under {vm_root} "
                f"depend{'s' if dirs == 1 else ''} on it") if dirs else ""

    def refuse(problem: str) -> VirshleError:
        return VirshleError(
            f"{db_path} {problem}{at_stake}",
            "Restore the database from a backup; or run `virshle node init --db --force-new` to "
            "set it (and any VM directories) aside and start a new one.", code="bad_database")

    if dirs and not db_path.exists():
        raise refuse("is missing")
    if dirs and db_path.stat().st_size == 0:
        raise refuse("is empty (0 bytes)")
    try:
        store = Store(db_path, node=node)
    except sqlite3.DatabaseError as exc:
        raise refuse(f"is not a usable SQLite database ({exc})") from None
    try:
        verdict = store.conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(verdict)
        if dirs and store.count() == 0:
            raise refuse("holds no VM")
    except sqlite3.DatabaseError as exc:
        store.close()
        raise refuse(f"is damaged ({exc})") from None
    except BaseException:
        store.close()
        raise
    return store


def set_aside(db_path: Path, vm_root: Path) -> list[str]:
    """Move a broken database and the VM directories it knew aside; nothing is deleted."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db_path}{suffix}")
        if path.exists():
            target = Path(f"{db_path}.broken-{stamp}{suffix}")
            path.rename(target)
            moved.append(f"{path} -> {target}")
    dirs = vm_directories(vm_root)
    if dirs:
        lost = vm_root.parent / "lost+found" / stamp
        lost.mkdir(mode=0o750, parents=True, exist_ok=True)
        for directory in dirs:
            directory.rename(lost / directory.name)
        moved.append(f"{len(dirs)} VM directories -> {lost}")
    return moved
