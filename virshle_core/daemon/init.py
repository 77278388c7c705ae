"""``virshle node init``: make the node's directories, database and group.

Idempotent: running it again repairs what is missing and changes nothing
else. ``--net`` asks the plugins (``virshle_node_init``) to prepare the host
network and reap their orphans.
"""

from __future__ import annotations

import grp
import os
import subprocess
from pathlib import Path

from .. import events
from ..config import Config
from ..errors import VirshleError
from ..log import log_command, logger
from ..models import NodeContext
from ..plugins import hook

PARTS = ("dir", "db", "net")
GROUP = "virshle"


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


def init_node(config: Config, parts: set[str], node_name: str = "default") -> dict[str, list[str]]:
    """Prepare the parts asked for; return what was done, per part."""
    unknown = parts - set(PARTS)
    if unknown:
        raise VirshleError(f"unknown node init part(s): {', '.join(sorted(unknown))}")
    root = config.host.root_path
    done: dict[str, list[str]] = {}
    if "dir" in parts:
        made = []
        for path in (root, root / "vm", root / "cache"):
            if not path.is_dir():
                try:
                    path.mkdir(parents=True, exist_ok=True)
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
        done["dir"] = made
    if "db" in parts:
        if not root.is_dir():
            raise VirshleError(f"{root} does not exist", "Run `virshle node init --dir` first.")
        from ..store import Store

        store = Store(config.host.db_path, node=node_name)
        version = store.version
        store.close()
        done["db"] = [f"{config.host.db_path} (schema version {version})"]
    node = NodeContext(name=node_name, config=config)
    if parts & {"net"}:
        hook().virshle_node_init(node=node, parts=frozenset(parts))
        from ..plugins import get_plugin_manager

        pm = get_plugin_manager()
        preparers = sorted(pm.get_name(impl.plugin) for impl in hook().virshle_node_init.get_hookimpls())
        done["net"] = [f"prepared by plugin {name}" for name in preparers] or [
            "no installed plugin prepares the network"]
    events.emit(events.NODE_INITIALIZED, node_name, parts=sorted(parts), root=str(root))
    return done
