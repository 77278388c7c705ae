"""Docs coverage is a test: every hook documented with its exact signature, and tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from virshle_core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
               if name.startswith("virshle_"))


def signature(name: str) -> str:
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def test_the_contract_has_every_design_hook():
    assert HOOKS == sorted([
        "virshle_config_sections", "virshle_register_commands", "virshle_node_init",
        "virshle_node_info", "virshle_choose_node", "virshle_pre_create", "virshle_disk_clone",
        "virshle_net_attach", "virshle_net_detach", "virshle_start", "virshle_stop",
        "virshle_vm_state", "virshle_console", "virshle_lease_query", "virshle_post_delete",
        "virshle_provision", "virshle_vm_watch", "virshle_hypervisor", "virshle_vm_control",
        "virshle_snapshot", "virshle_disk_resize", "virshle_disk_copy", "virshle_node_gc",
        "virshle_verbs", "virshle_routes", "virshle_services", "virshle_net_types",
        "virshle_migration_support", "virshle_migration_receive", "virshle_migration_send",
        "virshle_migration_end", "virshle_guest_login", "virshle_service_after",
        "virshle_vm_stats", "virshle_discover_nodes"])


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_exact_signature(hook):
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert f"#### {hook}\n" in docs, f"docs/plugins.md has no heading for {hook}"
    assert signature(hook) in docs, f"docs/plugins.md lacks the signature {signature(hook)}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def test_hook_{hook}\b", sources), f"no test_hook_{hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_docstring_names_every_parameter(hook):
    fn = getattr(hookspecs, hook)
    doc = inspect.getdoc(fn) or ""
    for param in inspect.signature(fn).parameters:
        assert f":param {param}:" in doc, f"{hook} does not document {param}"
    assert ":returns:" in doc
    firstresult = fn.virshle_spec.get("firstresult") if hasattr(fn, "virshle_spec") else False
    assert ("Stops at first non-None result." in doc) == bool(firstresult), hook


def test_api_doc_lists_every_route():
    from virshle_core.config import parse_config
    from virshle_core.daemon.node import Node
    from virshle_core.daemon.routes import Api

    docs = (ROOT / "docs" / "api.md").read_text()
    for route in Api(Node(parse_config("", path=None))).routes:
        assert f"`{route.method} /api/v1{route.path}`" in docs, route.path


def test_the_generated_parts_of_the_docs_are_current():
    """docs/plugins.md's hook reference and docs/api.md's error codes and VM fields are
    written by cog from the code; `make docs` rewrites them after a change."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "cogapp", "--check", "-I", "docs",
                             "docs/plugins.md", "docs/api.md"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr
                                    + "\nRun `make docs` and commit what it changes.")
