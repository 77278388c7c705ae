"""Validated configurations kept as JSON per user, so that a file that validated once is
not structured again (cattrs costs about a fifth of a ``virshle node ls``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import attrs

from .schema import Config


class ParsedCache:
    """Validated configurations, kept as JSON per user, keyed by everything they depend on.

    Structuring with cattrs costs about a fifth of a `virshle node ls`; a
    file that validated once is read back from here until it, a plugin
    table's class, or Virshle changes. The entries are plain JSON (never
    pickle: reading one can run no code), rebuilt into the attrs classes
    without validating again. A directory or file that is not the user's
    own, or that others may write, is ignored.
    """

    def __init__(self, text: str, path: str, sections: dict[str, type],
                 hypervisors: list[str] | None = None):
        import hashlib

        self.sections = sections
        digest = hashlib.sha256()
        digest.update(text.encode())
        digest.update(os.path.abspath(path).encode())
        for name, cls in sorted(sections.items()):
            module = sys.modules.get(cls.__module__)
            source = getattr(module, "__file__", "") or ""
            try:
                stamp = os.stat(source).st_mtime_ns
            except OSError:
                stamp = 0
            digest.update(f"{name}={cls.__module__}.{cls.__qualname__}@{stamp};".encode())
        digest.update(f"hypervisors={sorted(hypervisors) if hypervisors is not None else None};".encode())
        here = os.path.dirname(os.path.abspath(__file__))
        for schema in ("schema.py", "structuring.py", "cache.py"):  # what a cached entry depends on
            digest.update(str(os.stat(os.path.join(here, schema)).st_mtime_ns).encode())
        self.key = digest.hexdigest()[:32]
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        self.directory = Path(base) / "virshle"
        self.file = self.directory / f"config-{self.key}.json"

    @staticmethod
    def _owned(info: os.stat_result, private: bool) -> bool:
        others = 0o077 if private else 0o022
        return info.st_uid == os.geteuid() and (info.st_mode & others) == 0

    def _trusted(self) -> bool:
        try:
            return self._owned(os.stat(self.directory), private=True)
        except OSError:
            return False

    def load(self) -> "Config | None":
        if os.environ.get("VIRSHLE_NO_CACHE") or not self._trusted():
            return None
        try:
            import json

            with open(self.file, "rb") as handle:
                if not self._owned(os.fstat(handle.fileno()), private=False):
                    return None
                data = json.loads(handle.read())
            return _rebuild_config(data, self.sections)
        except Exception:
            return None  # missing, stale or foreign: validate the file again

    def store(self, config: "Config") -> None:
        if os.environ.get("VIRSHLE_NO_CACHE"):
            return
        try:
            import json
            import tempfile

            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._trusted():
                return
            entries = sorted(self.directory.glob("config-*"), key=lambda p: p.stat().st_mtime)
            for old in entries[:-15]:  # keep the 16 most recent configurations
                old.unlink(missing_ok=True)
            data = _plain(attrs.evolve(config, warnings=[]))
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(tmp, self.file)
        except Exception:
            return  # a cache that cannot be written is only slower


def _plain(value: Any) -> Any:
    """Attrs instances as dicts of their fields, recursively: JSON-ready."""
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _rebuild(cls: type, data: Any) -> Any:
    """The inverse of ``_plain`` for data that was validated when it was cached."""
    import typing

    if not attrs.has(cls):
        origin = typing.get_origin(cls)
        if origin is list and isinstance(data, list):
            (item,) = typing.get_args(cls) or (Any,)
            return [_rebuild(item, value) for value in data]
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            for option in typing.get_args(cls):
                if option is not type(None) and data is not None:
                    return _rebuild(option, data)
            return data
        return data
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _rebuild(hints.get(f.name, Any), data[f.name])
                  for f in attrs.fields(cls) if f.init and f.name in data})


def _rebuild_config(data: dict, sections: dict[str, type]) -> "Config":
    if set(data.get("sections", {})) != set(sections):
        raise ValueError("the plugin tables changed")
    config = _rebuild(Config, {key: value for key, value in data.items() if key != "sections"})
    config.sections = {name: _rebuild(sections[name], value)
                       for name, value in data["sections"].items()}
    return config
