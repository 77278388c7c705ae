"""The import graph of the core and the plugins has no cycle (issue 11).

Every import counts, those inside functions and under ``TYPE_CHECKING`` too: a
cycle that only a lazy import hides still means two modules that cannot be
understood one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "virshle_core", *sorted(ROOT.glob("plugins/*/virshle_*"))]


def module_name(path: Path, package_dir: Path) -> str:
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package_dir in PACKAGES:
        for path in package_dir.rglob("*.py"):
            found[module_name(path, package_dir)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = {f"{module}.{alias.name}" for alias in node.names} & known.keys()
            # ``from pkg import mod`` needs mod; ``from pkg import name`` needs pkg itself
            targets.update(submodules)
            if len(submodules) < len(node.names):
                targets.add(module)
    return {t for t in targets if t in known and t != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_is_read():
    edges = graph()
    assert "virshle_core.store.store" in edges["virshle_core.vm.lifecycle"]
    assert "virshle_core.daemon.http" in edges["virshle_core.daemon.routes"]


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_hot_path_imports_nothing_heavy():
    """What `vm ls` and `node ls` import on the fast path brings none of the modules the
    start-up budget keeps out (docs/architecture.md, "Start-up budget"): a `from typing
    import Any` in a wire module cost a listing 10 ms, a third of it, and no test saw it."""
    import subprocess
    import sys

    probe = ("import sys; base = set(sys.modules)\n"
             "import virshle_core.cli.fast, virshle_core.cli.listing, virshle_core.client, "
             "virshle_core.wire.api, virshle_core.cli.render\n"
             "print(' '.join(sorted(set(sys.modules) - base)))")
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                check=True).stdout.split())
    heavy = {"typing", "click", "pluggy", "attrs", "cattrs", "hashlib", "enum", "re", "json",
             "asyncio", "asyncssh", "loguru", "sqlite3", "psutil"}
    assert loaded & heavy == set()
