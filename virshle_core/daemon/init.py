"""``virshle node init``: make the node's directories, database and group.

Idempotent: running it again repairs what is missing and changes nothing
else. ``--net`` asks the plugins (``virshle_node_init``) to prepare the host
network and reap their orphans.

It runs where the node's events can be heard: in the daemon when one serves
(``POST /node/init``: the plugins see the daemon's own store, and the
``node-initialized`` event reaches ``GET /events``), else in the command line's
process, before any daemon exists.

File modes (``secure``, applied here and by every daemon start to what
already exists): the root is 0750 and belongs to group ``virshle`` (its
members reach the socket, 0660, and nothing else); the database, its WAL
and the lock are 0640; VM directories and the cache are 0750; user-data,
disks and NVRAM are 0600; cached images 0440. Nothing under the root is
readable by other users.
"""

from __future__ import annotations

import grp
import os
import subprocess
from pathlib import Path

from .. import events
from ..config import Config
from ..errors import UsageError, VirshleError
from ..log import log_command, logger
from ..marks import NODE_ID, node_id
from ..models import NodeContext
from ..hooks import plugins

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..store.store import Store
    from ..wire import api

PARTS = ("dir", "db", "net")
GROUP = "virshle"
DIR_MODE = 0o750
PRIVATE_FILES = ("user-data", "OVMF_VARS.fd", "nvram")  # in a VM directory: 0600
DB_FILES = ("virshle.sqlite", "virshle.sqlite-wal", "virshle.sqlite-shm", "daemon.lock")


def secure(root: Path, gid: int | None = None) -> list[str]:
    """Apply the node's file modes under ``root``; return the paths that changed."""
    import stat

    changed: list[str] = []

    def chmod(path: Path, mode: int) -> None:
        try:
            info = path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == mode:
            return
        os.chmod(path, mode)
        changed.append(f"{path} {mode:04o}")

    if gid is None:
        try:
            gid = grp.getgrnam(GROUP).gr_gid
        except KeyError:
            gid = None
    if gid is not None and root.stat().st_gid != gid:
        try:
            os.chown(root, -1, gid)
            changed.append(f"{root} group {GROUP}")
        except PermissionError:
            logger.warning("cannot give {} to group {} (not root)", root, GROUP)
    chmod(root, DIR_MODE)
    for name in DB_FILES:
        chmod(root / name, 0o640)
    for top in ("vm", "cache", "lost+found"):
        chmod(root / top, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root / "vm"):
        here = Path(dirpath)
        for name in dirnames:
            chmod(here / name, DIR_MODE)
        for name in filenames:
            path = here / name
            if here.name == "disk" or name in PRIVATE_FILES:
                chmod(path, 0o600)
            else:
                _strip_others(path, chmod)
    for path in (root / "cache").glob("*") if (root / "cache").is_dir() else []:
        if path.name.startswith(".") or path.name.endswith(".sha256"):
            _strip_others(path, chmod)
        else:
            chmod(path, 0o440)
    return changed


def _strip_others(path: Path, chmod) -> None:
    import stat

    try:
        mode = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return
    chmod(path, mode & ~0o007)


def ensure_group(name: str = GROUP) -> int | None:
    """The gid of group ``name``, creating it (as a system group) when missing."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    if os.geteuid() != 0:
        logger.warning("group {!r} is missing and only root can create it", name)
        return None
    argv = ["groupadd", "--system", name]
    log_command(argv)
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        logger.warning("could not create group {!r}: {}", name, detail.strip())
        return None
    return grp.getgrnam(name).gr_gid


def init_node(config: Config, parts: set[str], node_name: str = "default",
              force_new: bool = False, store: "Store | None" = None) -> dict[str, list[str]]:
    """Prepare the parts asked for; return what was done, per part.

    ``force_new`` (with ``db``) sets a broken database and the VM directories
    it knew aside, and starts an empty one. ``store`` is the daemon's open
    store, when a daemon runs this.
    """
    unknown = parts - set(PARTS)
    if unknown:
        raise UsageError(f"unknown node init part(s): {', '.join(sorted(unknown))}",
                         f"Parts: {', '.join(PARTS)}.")
    root = config.host.root_path
    done: dict[str, list[str]] = {}
    if "dir" in parts:
        made = []
        for path in (root, root / "vm", root / "cache"):
            if not path.is_dir():
                try:
                    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                except OSError as exc:
                    raise VirshleError(
                        f"cannot create {path}: {exc.strerror}",
                        "Run `virshle node init` as root, or set [host] root to a writable place.",
                    ) from None
                made.append(str(path))
        if config.path is None and os.geteuid() == 0:
            config_dir = Path("/etc/virshle")
            if not config_dir.is_dir():
                config_dir.mkdir(parents=True, exist_ok=True)
                made.append(str(config_dir))
        gid = ensure_group()
        if gid is not None:
            made.append(f"group {GROUP} (gid {gid})")
        try:
            made += [f"mode {item}" for item in secure(root, gid)]
        except OSError as exc:
            raise VirshleError(f"cannot set the modes under {root}: {exc.strerror} ({exc.filename})",
                               "Run `virshle node init` as root.") from None
        if not (root / NODE_ID).exists():
            made.append(f"{root / NODE_ID} ({node_id(root)})")
        done["dir"] = made
    if "db" in parts:
        if not root.is_dir():
            raise VirshleError(f"{root} does not exist", "Run `virshle node init --dir` first.")
        from ..store.opening import open_node_store, set_aside

        db_path = config.host.db_path
        made = set_aside(db_path, root / "vm") if force_new else []
        old_umask = os.umask(0o027)
        try:
            opened_store = open_node_store(db_path, root / "vm", node=node_name)
        except OSError as exc:
            raise VirshleError(f"cannot open {db_path}: {exc.strerror}",
                               "Run `virshle node init` as root.") from None
        finally:
            os.umask(old_umask)
        version = opened_store.version
        opened_store.close()
        for path in (Path(f"{db_path}{suffix}") for suffix in ("", "-wal", "-shm")):
            if path.exists():
                os.chmod(path, 0o640)
        done["db"] = made + [f"{db_path} (schema version {version})"]
    node = NodeContext(name=node_name, config=config, store=store)
    if parts & {"net"}:
        opened = store is None and config.host.db_path.exists()
        if opened:  # so that the plugins tell the node's VMs from orphans
            from ..store.store import Store

            node.store = Store(config.host.db_path, node=node_name)
        try:
            plugins().node_init(node=node, parts=frozenset(parts))
        finally:
            if opened:
                node.store.close()
        preparers = plugins().implementers("node_init")
        done["net"] = [f"prepared by plugin {name}" for name in preparers] or [
            "no installed plugin prepares the network"]
    events.emit(events.NODE_INITIALIZED, node_name, parts=sorted(parts), root=str(root))
    return done


def gc(node: NodeContext, request) -> "api.NodeGcResult":
    """``POST /node/gc``, on the daemon's node."""
    from ..wire import api

    removed = gc_node(node.config, request.dry_run, node.name, node.store)
    return api.NodeGcResult(dry_run=request.dry_run, removed=removed)


def gc_node(config: Config, dry_run: bool, node_name: str = "default",
            store: "Store | None" = None) -> list[str]:
    """``node gc``: the plugins remove the strays that look like Virshle's but carry no
    node's mark (``virshle_node_gc``); return what went, or with ``dry_run`` would go."""
    node = NodeContext(name=node_name, config=config, store=store)
    opened = store is None and config.host.db_path.exists()
    if opened:  # the node's own VMs are never strays
        from ..store.store import Store

        node.store = Store(config.host.db_path, node=node_name)
    try:
        return plugins().node_gc(node=node, dry_run=dry_run)
    finally:
        if opened:
            node.store.close()
