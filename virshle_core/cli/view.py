"""The command line's view of a validated configuration, cached as JSON for the fast path.

After the full command line has validated a configuration file, it keeps
what the fast path (``cli/fast.py``) needs, the managed nodes and the
template disks to warn about, in ``~/.cache/virshle/view-….json``. The view
holds while nothing it depends on changed: the file (path, size, inode,
modification time), the installed distributions (the directories on
``sys.path``), the plugin allow and deny lists, and Virshle's own config
schema. Like the validated-config cache it is plain JSON, read only from a
directory and a file that are the user's own and nobody else may write.
"""

from __future__ import annotations

import os
import sys

from ..locations import config_path as chosen_path  # noqa: F401 (the fast path imports it here)


def identity(path: str) -> list:
    """What the view of ``path`` depends on; a different value makes it stale."""
    try:
        info = os.stat(path)
        file = [os.path.abspath(path), info.st_mtime_ns, info.st_size, info.st_ino]
    except OSError:
        file = [os.path.abspath(path), None]
    installed = []
    for entry in sys.path:
        try:
            installed.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            continue
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        schema = os.stat(os.path.join(here, "config", "schema.py")).st_mtime_ns
    except OSError:
        schema = None
    return [file, installed, os.environ.get("VIRSHLE_PLUGINS"),
            os.environ.get("VIRSHLE_DISABLE_PLUGINS"), schema]


def _directory() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "virshle")


def _file(path: str) -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.abspath(path))
    return os.path.join(_directory(), f"view-{name[-150:]}.json")


def _owned(info: os.stat_result, private: bool) -> bool:
    others = 0o077 if private else 0o022
    return info.st_uid == os.geteuid() and (info.st_mode & others) == 0


def load(path: str) -> dict | None:
    """The cached view of ``path``, or None when there is none to trust or it is stale."""
    if os.environ.get("VIRSHLE_NO_CACHE"):
        return None
    try:
        if not _owned(os.stat(_directory()), private=True):
            return None
        with open(_file(path), "rb") as handle:
            if not _owned(os.fstat(handle.fileno()), private=False):
                return None
            data = handle.read()
        from ..client.jsonlite import loads

        view = loads(data)
    except (OSError, ValueError):
        return None
    if not isinstance(view, dict) or view.get("identity") != identity(path):
        return None
    return view


def store(path: str, config) -> None:
    """Keep the view of a configuration that just validated."""
    if os.environ.get("VIRSHLE_NO_CACHE"):
        return
    try:
        import json
        import tempfile

        directory = _directory()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _owned(os.stat(directory), private=True):
            return
        view = {
            "identity": identity(path),
            "nodes": [{"name": n.name, "url": n.url, "weight": n.weight, "timeout": n.timeout,
                       "persist": n.persist, "labels": n.labels}
                      for n in config.managed_nodes()],
            "disks": disks_of(config),
            "verbs": plugin_verbs(),  # the fast path knows them without loading plugins
            # a catalogue of nodes: asked by the full command line each time
            "discovery": _discovery(config),
        }
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(view, handle)
        os.replace(tmp, _file(path))
    except Exception:
        return  # without a view, commands take the full path: slower, never wrong


def _discovery(config) -> bool:
    from ..hooks import plugins

    return plugins().discover_nodes(config=config, probe=True) is not None


def plugin_verbs() -> list[dict]:
    """The plugins' verbs (``virshle_verbs``), as data."""
    from ..verbs import every

    return [verb.to_json() for verb in every() if verb.plugin != "core"]


def disks_of(config) -> list[tuple[str, str]]:
    """The template disks this command line may warn about (each path, and its warning).

    Templates are the daemon's: it reads them, with its own user's home for ``~``. The
    command line says nothing of a path under ``~``, nor of any disk when a node it manages
    is on another host (``ssh://``): it cannot see those files.
    """
    if any(not node.url.startswith("unix://") for node in config.managed_nodes()):
        return []
    from ..config import disk_warnings

    return disk_warnings(config.path or "config.toml", _text(config.path), config.templates,
                         skip_home=True)


def _text(path: str | None) -> str:
    try:
        with open(path or "", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""
